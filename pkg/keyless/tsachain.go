package keyless

import (
	"bytes"
	"crypto/x509"
	"errors"
	"time"

	"github.com/sigstore/sigstore-go/pkg/root"
	tsaverification "github.com/sigstore/timestamp-authority/v2/pkg/verification"
)

// A timestamping authority of a trusted root signs every timestamp with
// the same certificate, issued through the same intermediates by the same
// root: all trusted material. sigstore-go verifies that chain (two ECDSA
// checks for the public-good TSA) again for every timestamp. Here it is
// verified once per distinct chain, by exact bytes, with crypto/x509 and
// the TSA's key usage; each timestamp then gets the whole check of its own
// token (signature by that certificate, certificate valid and for
// time-stamping at the token's time, hashed message, TSA validity period)
// by the same timestamp-authority code, with the certificate as the only
// anchor, plus the check that every certificate of the verified chain was
// valid at the token's time: what crypto/x509 checks of the chain that
// depends on the time.
//
// What is cached is a property of trusted material only, never of a
// timestamp or a bundle, so a verification of a new bundle still does its
// whole work; and the cache holds at most maxTSAChains chains (a process
// loads a handful of trusted roots), so hostile input cannot grow it.

// maxTSAChains bounds the TSA chains remembered by a process.
const maxTSAChains = 64

// tsaChain is the verification, once, of a TSA's certificate chain.
type tsaChain struct {
	// windows are the validity intervals of the verified chains (the
	// latest NotBefore and earliest NotAfter of their certificates);
	// none when the chain does not verify.
	windows []window
}

type window struct{ notBefore, notAfter time.Time }

// chainWindow is the interval in which every certificate of chain is
// valid: the latest NotBefore and the earliest NotAfter.
func chainWindow(chain []*x509.Certificate) window {
	w := window{notAfter: chain[0].NotAfter}
	for _, c := range chain {
		if c.NotBefore.After(w.notBefore) {
			w.notBefore = c.NotBefore
		}
		if c.NotAfter.Before(w.notAfter) {
			w.notAfter = c.NotAfter
		}
	}
	return w
}

var tsaChains = newOnceCache[*tsaChain](maxTSAChains)

// chainOf returns the shared verification of tsa's chain, or nil when the
// cache is full.
func chainOf(tsa *root.SigstoreTimestampingAuthority) *tsaChain {
	key := certsKey(append(append([]*x509.Certificate{tsa.Leaf}, tsa.Intermediates...), tsa.Root))
	ch, _ := tsaChains.get(key, func() *tsaChain { return &tsaChain{windows: verifyTSAChain(tsa)} })
	return ch
}

// verifyTSAChain verifies tsa's leaf up to its root at a time when all
// its certificates are valid, for time-stamping, and returns the validity
// interval of each verified chain.
func verifyTSAChain(tsa *root.SigstoreTimestampingAuthority) []window {
	certs := append(append([]*x509.Certificate{tsa.Leaf}, tsa.Intermediates...), tsa.Root)
	var at time.Time
	for _, c := range certs {
		if c.NotBefore.After(at) {
			at = c.NotBefore
		}
	}
	roots, inter := x509.NewCertPool(), x509.NewCertPool()
	roots.AddCert(tsa.Root)
	for _, c := range tsa.Intermediates {
		inter.AddCert(c)
	}
	chains, err := tsa.Leaf.Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter, CurrentTime: at, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageTimeStamping}})
	if err != nil {
		return nil
	}
	var out []window
	for _, chain := range chains {
		out = append(out, chainWindow(chain))
	}
	return out
}

// contains reports whether every certificate of some verified chain is
// valid at t (as crypto/x509 judges it: not before NotBefore, not after
// NotAfter).
func (ch *tsaChain) contains(t time.Time) bool {
	for _, w := range ch.windows {
		if w.contains(t) {
			return true
		}
	}
	return false
}

// chainedTSA is a TSA of the trusted root whose chain is verified once.
type chainedTSA struct {
	*root.SigstoreTimestampingAuthority
	chain *tsaChain
}

// Verify is root.SigstoreTimestampingAuthority.Verify with the chain
// verified once. When the token's time falls outside the verified chain's
// validity, it gives way to the full verification, which may find another
// chain (through certificates the token carries) or says why not.
func (t *chainedTSA) Verify(signedTimestamp, signature []byte) (*root.Timestamp, error) {
	tsa := t.SigstoreTimestampingAuthority
	ts, err := tsaverification.VerifyTimestampResponse(signedTimestamp, bytes.NewReader(signature), tsaverification.VerifyOpts{
		Roots:          []*x509.Certificate{tsa.Leaf},
		TSACertificate: tsa.Leaf,
	})
	if err != nil {
		// Every check made here is also made by the full verification,
		// on the same certificate and token: it would fail too.
		return nil, err
	}
	if !t.chain.contains(ts.Time) {
		return tsa.Verify(signedTimestamp, signature)
	}
	// As root.SigstoreTimestampingAuthority.Verify, word for word.
	if !tsa.ValidityPeriodStart.IsZero() && ts.Time.Before(tsa.ValidityPeriodStart) {
		return nil, errors.New("timestamp is before the validity period start")
	}
	if !tsa.ValidityPeriodEnd.IsZero() && ts.Time.After(tsa.ValidityPeriodEnd) {
		return nil, errors.New("timestamp is after the validity period end")
	}
	return &root.Timestamp{Time: ts.Time, URI: tsa.URI}, nil
}

// chainedMaterial is trusted material whose TSAs and CAs verify their own
// chains once.
type chainedMaterial struct {
	root.TrustedMaterial
	tsas []root.TimestampingAuthority
	cas  []root.CertificateAuthority
}

func (m *chainedMaterial) TimestampingAuthorities() []root.TimestampingAuthority { return m.tsas }

func (m *chainedMaterial) FulcioCertificateAuthorities() []root.CertificateAuthority { return m.cas }

// withChainCache returns tm with the chain caches of its TSAs and (unless
// withCAs is false) its certificate authorities, or tm itself when none
// can use them. withCAs must be false for an entity that brings its own
// intermediates: sigstore-go adds them only to its own CA type.
func withChainCache(tm root.TrustedMaterial, withCAs bool) root.TrustedMaterial {
	cached := false
	tsas := tm.TimestampingAuthorities()
	outTSAs := make([]root.TimestampingAuthority, len(tsas))
	for i, a := range tsas {
		outTSAs[i] = a
		s, ok := a.(*root.SigstoreTimestampingAuthority)
		if !ok || s.Leaf == nil || s.Root == nil {
			continue
		}
		if ch := chainOf(s); ch != nil && len(ch.windows) > 0 {
			outTSAs[i], cached = &chainedTSA{SigstoreTimestampingAuthority: s, chain: ch}, true
		}
	}
	cas := tm.FulcioCertificateAuthorities()
	outCAs := make([]root.CertificateAuthority, len(cas))
	for i, a := range cas {
		outCAs[i] = a
		f, ok := a.(*root.FulcioCertificateAuthority)
		if !withCAs || !ok || f.Root == nil || len(f.Intermediates) == 0 {
			continue
		}
		if ch := caChainOf(f); ch != nil && len(ch.above) > 0 {
			outCAs[i], cached = &chainedCA{FulcioCertificateAuthority: f, chain: ch}, true
		}
	}
	if !cached {
		return tm
	}
	return &chainedMaterial{TrustedMaterial: tm, tsas: outTSAs, cas: outCAs}
}
