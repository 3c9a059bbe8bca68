// gobatch judges many (bundle, leaf) pairs with Go's crypto/x509 in one
// process, for the model-based test that checks every live leaf against
// every bundle after every step. One pair a line on stdin:
//
//	BUNDLE.pem<TAB>LEAF.pem<TAB>RFC3339
//
// One verdict a line on stdout, in order: "OK" or "FAIL: reason". Anchors are
// every certificate in BUNDLE (Go takes any certificate in Roots as an anchor),
// the EKU must allow clientAuth and serverAuth.
package main

import (
	"bufio"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"os"
	"strings"
	"time"
)

func readCerts(path string) ([]*x509.Certificate, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var out []*x509.Certificate
	for {
		var block *pem.Block
		block, data = pem.Decode(data)
		if block == nil {
			return out, nil
		}
		if block.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		out = append(out, c)
	}
}

func judge(line string) string {
	f := strings.Split(line, "\t")
	if len(f) != 3 {
		return "FAIL: bad input line"
	}
	at, err := time.Parse(time.RFC3339, f[2])
	if err != nil {
		return "FAIL: " + err.Error()
	}
	anchors, err := readCerts(f[0])
	if err != nil {
		return "FAIL: " + err.Error()
	}
	leaves, err := readCerts(f[1])
	if err != nil || len(leaves) == 0 {
		return "FAIL: no leaf"
	}
	roots := x509.NewCertPool()
	for _, a := range anchors {
		roots.AddCert(a)
	}
	for _, eku := range []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth, x509.ExtKeyUsageServerAuth} {
		if _, err := leaves[0].Verify(x509.VerifyOptions{Roots: roots, CurrentTime: at, KeyUsages: []x509.ExtKeyUsage{eku}}); err != nil {
			return "FAIL: " + err.Error()
		}
	}
	return "OK"
}

func main() {
	in := bufio.NewScanner(os.Stdin)
	in.Buffer(make([]byte, 1<<20), 1<<20)
	out := bufio.NewWriter(os.Stdout)
	defer out.Flush()
	for in.Scan() {
		if in.Text() == "" {
			continue
		}
		fmt.Fprintln(out, judge(in.Text()))
	}
}
