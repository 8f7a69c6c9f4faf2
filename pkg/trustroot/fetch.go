package trustroot

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/sigstore/sigstore-go/pkg/util"
	"github.com/theupdateframework/go-tuf/v2/metadata"
)

// fetcher is go-tuf's Fetcher with the bounds this package promises: one
// attempt per file (no retries), every request within the current phase's
// deadline and the caller's context, the length limit go-tuf asks for, and a
// request count. An offline fetcher fails every request at once.
type fetcher struct {
	ctx     context.Context
	client  *http.Client
	offline bool

	mu       sync.Mutex
	deadline time.Time
	requests int
}

// errOffline is the cause of every request of an offline fetcher.
var errOffline = errors.New("not contacting the repository (cached metadata only)")

// fetchError is a failure to get a file from the repository (network, HTTP
// status): the repository is unreachable, as opposed to serving bad content.
type fetchError struct {
	url string
	err error
}

func (e *fetchError) Error() string { return fmt.Sprintf("GET %s: %v", e.url, e.err) }
func (e *fetchError) Unwrap() error { return e.err }

func newFetcher(ctx context.Context, rt http.RoundTripper) *fetcher {
	if rt == nil {
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.DialContext = (&net.Dialer{Timeout: DialTimeout, KeepAlive: 30 * time.Second}).DialContext
		tr.TLSHandshakeTimeout = DialTimeout
		rt = tr
	}
	return &fetcher{ctx: ctx, client: &http.Client{Transport: rt}}
}

// restart starts a phase bounded by timeout.
func (f *fetcher) restart(timeout time.Duration) {
	f.mu.Lock()
	f.deadline = time.Now().Add(timeout)
	f.mu.Unlock()
}

func (f *fetcher) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.requests
}

// DownloadFile implements go-tuf's fetcher.Fetcher.
func (f *fetcher) DownloadFile(url string, maxLength int64, _ time.Duration) ([]byte, error) {
	if f.offline {
		return nil, &fetchError{url, errOffline}
	}
	f.mu.Lock()
	f.requests++
	deadline := f.deadline
	f.mu.Unlock()
	ctx, cancel := context.WithDeadline(f.ctx, deadline)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, &fetchError{url, err}
	}
	req.Header.Set("User-Agent", util.ConstructUserAgent())
	resp, err := f.client.Do(req)
	if err != nil {
		return nil, &fetchError{url, err}
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		// go-tuf reads a 404 for the next root version as "no newer root".
		return nil, &metadata.ErrDownloadHTTP{StatusCode: resp.StatusCode, URL: url}
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxLength+1))
	if err != nil {
		return nil, &fetchError{url, err}
	}
	if int64(len(data)) > maxLength {
		return nil, &metadata.ErrDownloadLengthMismatch{Msg: fmt.Sprintf("%s is larger than the %d bytes the metadata allows", url, maxLength)}
	}
	return data, nil
}

// isUnreachable reports whether err means the repository could not be
// reached or did not serve a file (as opposed to serving bad content).
func isUnreachable(err error) bool {
	var fe *fetchError
	var he *metadata.ErrDownloadHTTP
	return errors.As(err, &fe) || errors.As(err, &he)
}
