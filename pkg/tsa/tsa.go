// Package tsa asks RFC 3161 timestamp authorities to timestamp signatures,
// on sigstore-go's sign.TimestampAuthority: one client per run, shared by
// keyless signing (pkg/keylesssign, which hands Authorities to sigstore-go's
// bundle signing) and key-based signing (pkg/sign, pkg/attest, which call
// Timestamp themselves).
//
// A token is requested over the SHA-256 of exactly the bytes given (cosign:
// a signature's raw bytes; a legacy attestation's whole layer) and is
// checked, before it is returned, to be a well-formed RFC 3161 response
// whose message imprint is that hash. Whether the TSA is trusted is the
// verifier's business (pkg/keyless.VerifyTimestamp against a trusted root);
// AddToTrustedRoot writes a TSA into a trusted root for it.
package tsa

import (
	"bytes"
	"context"
	"crypto"
	"crypto/sha256"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/digitorus/timestamp"
	protocommon "github.com/sigstore/protobuf-specs/gen/pb-go/common/v1"
	trustpb "github.com/sigstore/protobuf-specs/gen/pb-go/trustroot/v1"
	"github.com/sigstore/sigstore-go/pkg/root"
	sgsign "github.com/sigstore/sigstore-go/pkg/sign"
	"github.com/sigstore/sigstore/pkg/cryptoutils"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// ErrFailed is matched (errors.Is) by every failure of a timestamp
// authority: it refused, did not answer, or answered with something that
// is not a timestamp of what was sent.
var ErrFailed = errors.New("timestamp authority failed")

// Options configure a Client.
type Options struct {
	// Timeout bounds each request (30 s when 0).
	Timeout time.Duration
	// Transport carries the requests (http.DefaultTransport when nil).
	Transport http.RoundTripper
	// Untouched is added to every failure's message: what the caller
	// promises a failure leaves as it was ("nothing was written to the
	// registry"); "" adds nothing.
	Untouched string
}

// Client timestamps with one or more TSAs; safe for concurrent use.
type Client struct {
	urls     []string
	tsas     []*sgsign.TimestampAuthority
	note     string
	requests atomic.Int64
	status   atomic.Int64 // the last error status a TSA answered
}

// New returns a client of the TSAs at urls (their full RFC 3161 endpoint
// URLs, e.g. https://tsa.example/api/v1/timestamp); nil without urls.
func New(urls []string, o Options) *Client {
	if len(urls) == 0 {
		return nil
	}
	timeout := o.Timeout
	if timeout == 0 {
		timeout = 30 * time.Second
	}
	base := o.Transport
	if base == nil {
		base = http.DefaultTransport
	}
	c := &Client{urls: urls}
	if o.Untouched != "" {
		c.note = " (" + o.Untouched + ")"
	}
	for _, u := range urls {
		c.tsas = append(c.tsas, sgsign.NewTimestampAuthority(&sgsign.TimestampAuthorityOptions{URL: u, Timeout: timeout,
			Transport: counting{base: base, n: &c.requests, status: &c.status}}))
	}
	return c
}

// URLs are the TSAs' endpoints, in order.
func (c *Client) URLs() []string { return c.urls }

// Authorities are the TSAs as sigstore-go's bundle signing takes them
// (sign.BundleOptions.TimestampAuthorities); their requests are counted.
func (c *Client) Authorities() []*sgsign.TimestampAuthority { return c.tsas }

// Requests counts the HTTP requests sent to the TSAs so far.
func (c *Client) Requests() int64 {
	if c == nil {
		return 0
	}
	return c.requests.Load()
}

// Timestamp asks every TSA, in order, for a timestamp over data and
// returns their tokens (DER RFC 3161 responses). what names data in errors
// ("the signature of IMAGE"). Every error matches ErrFailed.
func (c *Client) Timestamp(ctx context.Context, data []byte, what string) ([][]byte, error) {
	return c.timestamp(ctx, data, what, len(c.tsas))
}

// One asks only the first TSA: for cosign's legacy annotation, which
// holds one token.
func (c *Client) One(ctx context.Context, data []byte, what string) ([]byte, error) {
	tokens, err := c.timestamp(ctx, data, what, 1)
	if err != nil {
		return nil, err
	}
	return tokens[0], nil
}

func (c *Client) timestamp(ctx context.Context, data []byte, what string, n int) ([][]byte, error) {
	want := sha256.Sum256(data)
	out := make([][]byte, 0, n)
	for i, t := range c.tsas[:n] {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		token, err := t.GetTimestamp(ctx, data)
		if err == nil {
			err = checkImprint(token, want[:])
		}
		if err != nil {
			return nil, c.explain(c.urls[i], what, err)
		}
		out = append(out, token)
	}
	return out, nil
}

// checkImprint makes sure a TSA timestamped what it was sent.
func checkImprint(token, want []byte) error {
	ts, err := timestamp.ParseResponse(token)
	if err != nil {
		return fmt.Errorf("not an RFC 3161 timestamp response: %w", err)
	}
	if ts.HashAlgorithm != crypto.SHA256 || !bytes.Equal(ts.HashedMessage, want) {
		return errors.New("the timestamp covers other bytes than those sent (its message imprint differs)")
	}
	return nil
}

// Explain turns a failure of sigstore-go's bundle signing with these TSAs
// into an error naming them and the last HTTP status they answered; it
// matches ErrFailed and wraps err.
func (c *Client) Explain(what string, err error) error {
	return c.explain(strings.Join(c.urls, ", "), what, err)
}

func (c *Client) explain(url, what string, err error) error {
	status := ""
	if st := c.status.Load(); st != 0 {
		status = fmt.Sprintf(" (last answer: HTTP %d)", st)
	}
	return &failure{fmt.Sprintf("timestamp authority %s did not timestamp %s%s%s", url, what, status, c.note), err}
}

// failure is a TSA error: its message, the cause, and ErrFailed.
type failure struct {
	msg string
	err error
}

func (f *failure) Error() string        { return f.msg + ": " + f.err.Error() }
func (f *failure) Unwrap() error        { return f.err }
func (f *failure) Is(target error) bool { return target == ErrFailed }

// Annotation is cosign's dev.sigstore.cosign/rfc3161timestamp annotation
// value for a token: {"SignedRFC3161Timestamp": base64 of the DER}.
func Annotation(token []byte) (string, error) {
	j, err := json.Marshal(struct {
		SignedRFC3161Timestamp []byte
	}{token})
	return string(j), err
}

// counting counts the requests it carries and notes the last error status
// answered.
type counting struct {
	base   http.RoundTripper
	n      *atomic.Int64
	status *atomic.Int64
}

func (c counting) RoundTrip(r *http.Request) (*http.Response, error) {
	c.n.Add(1)
	resp, err := c.base.RoundTrip(r)
	if c.status != nil && err == nil && resp.StatusCode >= 300 {
		c.status.Store(int64(resp.StatusCode))
	}
	return resp, err
}

// maxChainCertificates bounds a TSA certificate chain read.
const maxChainCertificates = 10

// AddToTrustedRoot adds to the Sigstore trusted root data (JSON) one
// timestamp authority per chain: PEM certificates, the TSA's leaf first
// and the trust anchor last, as a TSA serves them (timestamp-authority's
// /api/v1/timestamp/certchain), valid from validFrom; uris[i], when given,
// names the i-th TSA. The leaf must be for time stamping. The result is
// checked to read back, through sigstore-go, with every TSA added.
func AddToTrustedRoot(data []byte, chains [][]byte, uris []string, validFrom time.Time) ([]byte, error) {
	var tr trustpb.TrustedRoot
	if err := protojson.Unmarshal(data, &tr); err != nil {
		return nil, fmt.Errorf("not a trusted root: %w", err)
	}
	before := len(tr.GetTimestampAuthorities())
	for i, pemChain := range chains {
		certs, err := cryptoutils.UnmarshalCertificatesFromPEMLimited(pemChain, maxChainCertificates)
		if err != nil || len(certs) == 0 {
			return nil, fmt.Errorf("TSA chain %d: not PEM certificates (at most %d): %v", i+1, maxChainCertificates, err)
		}
		if !slices.Contains(certs[0].ExtKeyUsage, x509.ExtKeyUsageTimeStamping) {
			return nil, fmt.Errorf("TSA chain %d: its first certificate (%s) is not for time stamping: give the TSA's chain, leaf first", i+1, certs[0].Subject)
		}
		ca := &trustpb.CertificateAuthority{
			CertChain: &protocommon.X509CertificateChain{},
			ValidFor:  &protocommon.TimeRange{Start: timestamppb.New(validFrom)},
			Subject:   &protocommon.DistinguishedName{Organization: first(certs[0].Subject.Organization), CommonName: certs[0].Subject.CommonName},
		}
		if i < len(uris) {
			ca.Uri = uris[i]
		}
		for _, c := range certs {
			ca.CertChain.Certificates = append(ca.CertChain.Certificates, &protocommon.X509Certificate{RawBytes: c.Raw})
		}
		tr.TimestampAuthorities = append(tr.TimestampAuthorities, ca)
	}
	out, err := protojson.MarshalOptions{Multiline: true}.Marshal(&tr)
	if err != nil {
		return nil, err
	}
	back, err := root.NewTrustedRootFromJSON(out)
	if err != nil {
		return nil, fmt.Errorf("the trusted root with the TSAs does not read back: %w", err)
	}
	if n := len(back.TimestampingAuthorities()); n != before+len(chains) {
		return nil, fmt.Errorf("the trusted root reads back with %d timestamp authorities, not %d", n, before+len(chains))
	}
	return out, nil
}

func first(s []string) string {
	if len(s) == 0 {
		return ""
	}
	return s[0]
}
