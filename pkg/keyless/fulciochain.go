package keyless

import (
	"bytes"
	"crypto/x509"
	"encoding/asn1"
	"errors"
	"time"

	"github.com/sigstore/sigstore-go/pkg/root"
)

// Every keyless signature has its own certificate, but the certificate
// authority above it is trusted material: sigstore-go verifies the
// intermediate's signature by the root (and the rest of the CA's chain)
// again for each one. Here the CA's own chain, from each intermediate up to
// the root, is verified once per distinct CA, by exact bytes, with
// crypto/x509 and the code-signing usage; each certificate is then verified
// by crypto/x509 up to its issuing intermediate, which stands for the
// verified chain above it, and every certificate of that chain must be
// valid at the signing time.
//
// That is the same verdict as crypto/x509 on the whole chain only when the
// part above the issuer carries nothing that crypto/x509 judges across the
// whole chain, so a CA's intermediate stands in for its chain only when:
// no certificate of it has name constraints or certificate-policy
// extensions (policies, mappings, constraints, inhibit any-policy), its
// path-length constraints allow the chain one certificate deeper (the
// signing certificate below), and it is a CA certificate; and a signing
// certificate that carries policy constraints is verified in full. With
// the single code-signing usage sigstore-go asks for, the extended key
// usages of the chain are judged certificate by certificate, so in parts.
// The public-good Fulcio CA qualifies. Whatever does not, or any
// certificate that the shortcut does not verify, goes through sigstore-go's
// full verification, whose verdict and reason are then the ones given.
//
// The cache holds properties of trusted material only (at most
// maxCAChains CAs), never of a signing certificate or a bundle.

// maxCAChains bounds the certificate authorities remembered by a process.
const maxCAChains = 64

// Extensions that crypto/x509 judges across the whole chain.
var (
	oidNameConstraints     = asn1.ObjectIdentifier{2, 5, 29, 30}
	oidCertificatePolicies = asn1.ObjectIdentifier{2, 5, 29, 32}
	oidPolicyMappings      = asn1.ObjectIdentifier{2, 5, 29, 33}
	oidPolicyConstraints   = asn1.ObjectIdentifier{2, 5, 29, 36}
	oidInhibitAnyPolicy    = asn1.ObjectIdentifier{2, 5, 29, 54}
)

func hasExtension(c *x509.Certificate, oids ...asn1.ObjectIdentifier) bool {
	for _, e := range c.Extensions {
		for _, o := range oids {
			if e.Id.Equal(o) {
				return true
			}
		}
	}
	return false
}

// caChain is the verification, once, of a CA's chain above each of its
// intermediates.
type caChain struct {
	anchors *x509.CertPool
	// above are, for each intermediate that can stand for its chain
	// (by its raw bytes), the verified chains above it.
	above map[string][]verifiedAbove
}

// verifiedAbove is a verified chain above an intermediate, to the root,
// and the interval in which all its certificates (the intermediate's
// included) are valid.
type verifiedAbove struct {
	certs []*x509.Certificate
	window
}

var caChains = newOnceCache[*caChain](maxCAChains)

// caChainOf returns the shared verification of ca's chain, or nil when
// the cache is full.
func caChainOf(ca *root.FulcioCertificateAuthority) *caChain {
	key := certsKey(append(append([]*x509.Certificate{}, ca.Intermediates...), ca.Root))
	ch, _ := caChains.get(key, func() *caChain {
		ch := &caChain{}
		ch.verify(ca)
		return ch
	})
	return ch
}

// certsKey names a list of certificates by their exact bytes.
func certsKey(certs []*x509.Certificate) string {
	var key bytes.Buffer
	for _, c := range certs {
		n := len(c.Raw) // length-prefixed: no two lists share a key
		key.Write([]byte{byte(n >> 24), byte(n >> 16), byte(n >> 8), byte(n)})
		key.Write(c.Raw)
	}
	return key.String()
}

// verify finds the intermediates of ca that can stand for the chain above
// them (see above).
func (ch *caChain) verify(ca *root.FulcioCertificateAuthority) {
	ch.anchors, ch.above = x509.NewCertPool(), map[string][]verifiedAbove{}
	var at time.Time
	for _, c := range append(append([]*x509.Certificate{}, ca.Intermediates...), ca.Root) {
		if c.NotBefore.After(at) {
			at = c.NotBefore
		}
	}
	roots := x509.NewCertPool()
	roots.AddCert(ca.Root)
	for i, in := range ca.Intermediates {
		if !in.BasicConstraintsValid || !in.IsCA {
			continue
		}
		others := x509.NewCertPool()
		for j, o := range ca.Intermediates {
			if j != i {
				others.AddCert(o)
			}
		}
		chains, err := in.Verify(x509.VerifyOptions{Roots: roots, Intermediates: others, CurrentTime: at, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageCodeSigning}})
		if err != nil {
			continue
		}
		for _, chain := range chains {
			if !standsIn(chain) {
				continue
			}
			ch.above[string(in.Raw)] = append(ch.above[string(in.Raw)], verifiedAbove{certs: chain[1:], window: chainWindow(chain)})
		}
		if len(ch.above[string(in.Raw)]) > 0 {
			ch.anchors.AddCert(in)
		}
	}
}

// standsIn reports whether the verified chain from an intermediate to a
// root, chain, can be judged apart from the certificate below it.
func standsIn(chain []*x509.Certificate) bool {
	for q, c := range chain {
		if hasExtension(c, oidNameConstraints, oidCertificatePolicies, oidPolicyMappings, oidPolicyConstraints, oidInhibitAnyPolicy) {
			return false
		}
		// Below the whole chain, c has q intermediates under it, not
		// the q-1 it was verified with.
		if c.BasicConstraintsValid && c.MaxPathLen >= 0 && c.MaxPathLen < q {
			return false
		}
	}
	return true
}

// chainedCA is a certificate authority of the trusted root whose own
// chain is verified once.
type chainedCA struct {
	*root.FulcioCertificateAuthority
	chain *caChain
}

// Verify is root.FulcioCertificateAuthority.Verify with the CA's chain
// verified once; anything the shortcut does not verify gets the full
// verification.
func (ca *chainedCA) Verify(cert *x509.Certificate, observerTimestamp time.Time) ([][]*x509.Certificate, error) {
	// As root.FulcioCertificateAuthority.Verify, word for word.
	if !ca.ValidityPeriodStart.IsZero() && observerTimestamp.Before(ca.ValidityPeriodStart) {
		return nil, errors.New("certificate is not valid yet")
	}
	if !ca.ValidityPeriodEnd.IsZero() && observerTimestamp.After(ca.ValidityPeriodEnd) {
		return nil, errors.New("certificate is no longer valid")
	}
	if hasExtension(cert, oidPolicyConstraints) {
		return ca.FulcioCertificateAuthority.Verify(cert, observerTimestamp)
	}
	chains, err := cert.Verify(x509.VerifyOptions{
		CurrentTime: observerTimestamp,
		Roots:       ca.chain.anchors,
		KeyUsages:   []x509.ExtKeyUsage{x509.ExtKeyUsageCodeSigning},
	})
	var out [][]*x509.Certificate
	if err == nil {
		for _, c := range chains { // [cert, intermediate]
			for _, up := range ca.chain.above[string(c[len(c)-1].Raw)] {
				if up.contains(observerTimestamp) {
					out = append(out, append(append([]*x509.Certificate{}, c...), up.certs...))
				}
			}
		}
	}
	if len(out) == 0 {
		return ca.FulcioCertificateAuthority.Verify(cert, observerTimestamp)
	}
	return out, nil
}

func (w window) contains(t time.Time) bool {
	return !t.Before(w.notBefore) && !t.After(w.notAfter)
}
