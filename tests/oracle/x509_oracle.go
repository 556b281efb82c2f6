// A differential oracle for the check's CA file reader: the client CA file loaded as kube-apiserver loads it
// (client-go's cert.ParseCertsPEM: encoding/pem, then crypto/x509.ParseCertificate per CERTIFICATE block without
// headers), and for each certificate whether it can sign a client certificate that verifies against it.
// Standard library only.
//
// stdin: one JSON object per line {"bundle": base64, "keys": [base64 PKCS#8 ...], "now": unix seconds}.
// stdout: one JSON object per line {"error": "...", "certs": [...]}: error is ParseCertsPEM's (empty when the file
// loads); each cert gives its validity, "signable" and "why" when not, and "verified" when a test key matches its
// public key: a client certificate signed with that key, verified with x509.Verify against a pool holding only this
// certificate, at "now", for client authentication. With a key, "signable" is the same Verify at the CA's notBefore
// (validity dates aside); without one, CheckSignatureFrom's constraints (a child whose signature cannot verify:
// a signature failure means every other check passed), no unhandled critical extension and an extended key usage
// allowing clientAuth, which is what Verify asks of a root besides its own names within its name constraints.
package main

import (
	"bufio"
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"math/big"
	"os"
	"strings"
	"time"
)

type request struct {
	Bundle string   `json:"bundle"`
	Keys   []string `json:"keys"`
	Now    int64    `json:"now"`
}

type certResult struct {
	NotBefore int64  `json:"not_before"`
	NotAfter  int64  `json:"not_after"`
	Signable  bool   `json:"signable"`
	Why       string `json:"why"`
	Verified  *bool  `json:"verified"`
	VerifyErr string `json:"verify_error,omitempty"`
}

type response struct {
	Error string       `json:"error"`
	Certs []certResult `json:"certs"`
}

// parseCertsPEM is client-go's cert.ParseCertsPEM (k8s.io/client-go/util/cert/pem.go).
func parseCertsPEM(pemCerts []byte) ([]*x509.Certificate, error) {
	ok := false
	certs := []*x509.Certificate{}
	for len(pemCerts) > 0 {
		var block *pem.Block
		block, pemCerts = pem.Decode(pemCerts)
		if block == nil {
			break
		}
		if block.Type != "CERTIFICATE" || len(block.Headers) != 0 {
			continue
		}
		cert, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return certs, err
		}
		certs = append(certs, cert)
		ok = true
	}
	if !ok {
		return certs, errors.New("data does not contain any valid RSA or ECDSA certificates")
	}
	return certs, nil
}

var leafKey, _ = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)

// constraints: what CheckSignatureFrom checks before the signature, found by checking a child whose signature
// cannot verify (a signature failure means every other check passed), then what Verify asks of a root.
func constraints(ca *x509.Certificate) (bool, string) {
	algo := x509.SHA256WithRSA
	switch ca.PublicKey.(type) {
	case *ecdsa.PublicKey:
		algo = x509.ECDSAWithSHA256
	case ed25519.PublicKey:
		algo = x509.PureEd25519
	}
	child := &x509.Certificate{SignatureAlgorithm: algo, RawTBSCertificate: []byte("tbs"), Signature: make([]byte, 8)}
	err := child.CheckSignatureFrom(ca)
	if err == nil {
		return false, "oracle: a garbage signature verified"
	}
	msg := err.Error()
	if !errors.Is(err, rsa.ErrVerification) && !strings.Contains(msg, "verification failure") {
		return false, msg
	}
	if len(ca.UnhandledCriticalExtensions) > 0 {
		return false, "unhandled critical extension"
	}
	if len(ca.ExtKeyUsage) > 0 || len(ca.UnknownExtKeyUsage) > 0 {
		for _, u := range ca.ExtKeyUsage {
			if u == x509.ExtKeyUsageAny || u == x509.ExtKeyUsageClientAuth {
				return true, ""
			}
		}
		return false, "extended key usage without clientAuth"
	}
	return true, ""
}

func verify(ca *x509.Certificate, signer crypto.Signer, now time.Time) (bool, string) {
	template := &x509.Certificate{
		SerialNumber: big.NewInt(7),
		Subject:      pkix.Name{CommonName: "client"},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, template, ca, &leafKey.PublicKey, signer)
	if err != nil {
		return false, "create: " + err.Error()
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return false, "parse leaf: " + err.Error()
	}
	pool := x509.NewCertPool()
	pool.AddCert(ca)
	_, err = leaf.Verify(x509.VerifyOptions{
		Roots: pool, CurrentTime: now, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	})
	if err != nil {
		return false, err.Error()
	}
	return true, ""
}

func answer(req request) response {
	data, _ := base64.StdEncoding.DecodeString(req.Bundle)
	now := time.Unix(req.Now, 0)
	var signers []crypto.Signer
	for _, k := range req.Keys {
		der, _ := base64.StdEncoding.DecodeString(k)
		key, err := x509.ParsePKCS8PrivateKey(der)
		if err == nil {
			if s, ok := key.(crypto.Signer); ok {
				signers = append(signers, s)
			}
		}
	}
	certs, err := parseCertsPEM(data)
	out := response{Certs: []certResult{}}
	if err != nil {
		out.Error = err.Error()
		return out
	}
	for _, c := range certs {
		r := certResult{NotBefore: c.NotBefore.Unix(), NotAfter: c.NotAfter.Unix()}
		r.Signable, r.Why = constraints(c)
		for _, s := range signers {
			spki, err := x509.MarshalPKIXPublicKey(s.Public())
			if err == nil && bytes.Equal(spki, c.RawSubjectPublicKeyInfo) {
				ok, why := verify(c, s, now)
				r.Verified, r.VerifyErr = &ok, why
				if !c.NotAfter.Before(c.NotBefore) {
					// with the key, "signable" is Verify's own answer at a time the CA is valid
					r.Signable, r.Why = verify(c, s, c.NotBefore)
				}
				break
			}
		}
		out.Certs = append(out.Certs, r)
	}
	return out
}

func main() {
	in := bufio.NewScanner(os.Stdin)
	in.Buffer(make([]byte, 1<<20), 64<<20)
	out := bufio.NewWriter(os.Stdout)
	enc := json.NewEncoder(out)
	for in.Scan() {
		var req request
		if err := json.Unmarshal(in.Bytes(), &req); err != nil {
			enc.Encode(response{Error: "oracle: bad request: " + err.Error()})
		} else {
			enc.Encode(answer(req))
		}
		out.Flush()
	}
}
