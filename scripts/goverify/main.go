// goverify judges trellis certificates with Go's crypto/x509, a verifier
// trellis did not write. It anchors on every certificate in -roots (Go takes
// any certificate in Roots as an anchor), so it checks both the mesh's
// intermediate-anchored trust and root-anchored consumers.
//
//	goverify -roots trust.pem -cert leaf.pem [-intermediates chain.pem] [-eku server|client|any] [-dns NAME] [-at RFC3339]
//
// Prints "OK" and exits 0 when the chain verifies; prints "FAIL: reason" and exits 1 otherwise.
package main

import (
	"crypto/x509"
	"encoding/pem"
	"flag"
	"fmt"
	"os"
	"time"
)

func readCerts(path string) []*x509.Certificate {
	data, err := os.ReadFile(path)
	if err != nil {
		fail(err)
	}
	var out []*x509.Certificate
	for {
		var block *pem.Block
		block, data = pem.Decode(data)
		if block == nil {
			return out
		}
		if block.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			fail(fmt.Errorf("%s: %w", path, err))
		}
		out = append(out, c)
	}
}

func fail(err error) {
	fmt.Printf("FAIL: %v\n", err)
	os.Exit(1)
}

func main() {
	roots := flag.String("roots", "", "PEM file of anchors")
	inters := flag.String("intermediates", "", "PEM file of untrusted intermediates")
	cert := flag.String("cert", "", "PEM file whose first certificate is verified")
	eku := flag.String("eku", "any", "server, client or any")
	dns := flag.String("dns", "", "DNS name the certificate must be valid for")
	at := flag.String("at", "", "verify as of this RFC 3339 time (default now)")
	flag.Parse()
	if *roots == "" || *cert == "" {
		fmt.Fprintln(os.Stderr, "usage: goverify -roots FILE -cert FILE [-intermediates FILE] [-eku server|client|any] [-dns NAME] [-at RFC3339]")
		os.Exit(2)
	}
	opts := x509.VerifyOptions{Roots: x509.NewCertPool(), Intermediates: x509.NewCertPool(), DNSName: *dns}
	for _, c := range readCerts(*roots) {
		opts.Roots.AddCert(c)
	}
	if *inters != "" {
		for _, c := range readCerts(*inters) {
			opts.Intermediates.AddCert(c)
		}
	}
	switch *eku {
	case "server":
		opts.KeyUsages = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
	case "client":
		opts.KeyUsages = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
	case "any":
		opts.KeyUsages = []x509.ExtKeyUsage{x509.ExtKeyUsageAny}
	default:
		fmt.Fprintln(os.Stderr, "-eku must be server, client or any")
		os.Exit(2)
	}
	if *at != "" {
		t, err := time.Parse(time.RFC3339, *at)
		if err != nil {
			fail(err)
		}
		opts.CurrentTime = t
	}
	leaves := readCerts(*cert)
	if len(leaves) == 0 {
		fail(fmt.Errorf("%s holds no CERTIFICATE", *cert))
	}
	if _, err := leaves[0].Verify(opts); err != nil {
		fail(err)
	}
	fmt.Println("OK")
}
