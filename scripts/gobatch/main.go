// gobatch judges many (bundle, leaf) pairs with Go's crypto/x509 in one
// process, for the model-based test that checks every live leaf against
// every bundle after every step. One pair a line on stdin:
//
//	BUNDLE.pem<TAB>LEAF.pem<TAB>RFC3339
//
// One verdict a line on stdout, in order: "OK" or "FAIL: reason". Anchors are
// every certificate in BUNDLE (Go takes any certificate in Roots as an anchor),
// the EKU must allow clientAuth and serverAuth.
//
// A fourth field names a PEM file of CRLs: crypto/x509 checks no revocation, so
// the edge's full-chain checking is done here as nginx ssl_crl does it: every
// certificate of the chain below its anchor needs a CRL from its issuer, signed
// by that issuer, current at the instant, that does not list it.
//
//	BUNDLE.pem<TAB>LEAF.pem<TAB>RFC3339<TAB>CRLS.pem
package main

import (
	"bufio"
	"bytes"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"os"
	"strings"
	"time"
)

// readPem parses every PEM block of type typ in the file at path.
func readPem[T any](path, typ string, parse func([]byte) (T, error)) ([]T, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var out []T
	for {
		var block *pem.Block
		block, data = pem.Decode(data)
		if block == nil {
			return out, nil
		}
		if block.Type != typ {
			continue
		}
		v, err := parse(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		out = append(out, v)
	}
}

func readCerts(path string) ([]*x509.Certificate, error) {
	return readPem(path, "CERTIFICATE", x509.ParseCertificate)
}

func readCrls(path string) ([]*x509.RevocationList, error) {
	return readPem(path, "X509 CRL", x509.ParseRevocationList)
}

func judge(line string) string {
	f := strings.Split(line, "\t")
	if len(f) != 3 && len(f) != 4 {
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
	var chains [][]*x509.Certificate
	for _, eku := range []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth, x509.ExtKeyUsageServerAuth} {
		if chains, err = leaves[0].Verify(x509.VerifyOptions{Roots: roots, CurrentTime: at, KeyUsages: []x509.ExtKeyUsage{eku}}); err != nil {
			return "FAIL: " + err.Error()
		}
	}
	if len(f) == 4 {
		crls, err := readCrls(f[3])
		if err != nil {
			return "FAIL: " + err.Error()
		}
		// Any one chain that passes is enough, as a verifier that builds several would accept.
		var why string
		for _, chain := range chains {
			if why = revocationFailure(chain, crls, at); why == "" {
				return "OK"
			}
		}
		return "FAIL: " + why
	}
	return "OK"
}

// revocationFailure is "" when every certificate below the chain's anchor has a
// current CRL from its issuer that does not list it, else why not.
func revocationFailure(chain []*x509.Certificate, crls []*x509.RevocationList, at time.Time) string {
	for i := 0; i+1 < len(chain); i++ {
		cert, issuer := chain[i], chain[i+1]
		var crl *x509.RevocationList
		for _, c := range crls {
			if bytes.Equal(c.RawIssuer, cert.RawIssuer) && c.CheckSignatureFrom(issuer) == nil {
				crl = c
				break
			}
		}
		switch {
		case crl == nil:
			return "unable to get certificate CRL for " + cert.Subject.String()
		case at.Before(crl.ThisUpdate):
			return "CRL is not yet valid for " + cert.Subject.String()
		case !crl.NextUpdate.IsZero() && !at.Before(crl.NextUpdate):
			return "CRL has expired for " + cert.Subject.String()
		}
		for _, r := range crl.RevokedCertificates {
			if r.SerialNumber.Cmp(cert.SerialNumber) == 0 {
				return "certificate revoked: " + cert.Subject.String()
			}
		}
	}
	return ""
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
