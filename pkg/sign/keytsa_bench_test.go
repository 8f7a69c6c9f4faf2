package sign_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/imgsign/imgsign/internal/sigstoretest"
	"github.com/imgsign/imgsign/internal/testreg"
	"github.com/imgsign/imgsign/pkg/keys"
	"github.com/imgsign/imgsign/pkg/oci"
	"github.com/imgsign/imgsign/pkg/sign"
	"github.com/imgsign/imgsign/pkg/tsa"
)

// BenchmarkSignKeyTimestamped: key-signing 10 fresh images in both layouts
// against an in-process registry, without and with the in-process TSA
// (one timestamp request per signature and layout: tsa-requests/op).
func BenchmarkSignKeyTimestamped(b *testing.B) {
	for _, withTSA := range []bool{false, true} {
		b.Run(fmt.Sprintf("tsa=%v", withTSA), func(b *testing.B) {
			reg := testreg.Start(b, nil)
			fake := sigstoretest.Start(b)
			c, _ := oci.NewClient(oci.Options{})
			k, _ := keys.Generate(keys.ECDSAP256)
			s, err := sign.NewSigner(c, k)
			if err != nil {
				b.Fatal(err)
			}
			o := sign.Options{Upload: true, Format: sign.FormatBoth}
			if withTSA {
				o.Timestamps = tsa.New([]string{fake.TSAURL}, tsa.Options{})
			}
			n := 0
			for b.Loop() {
				b.StopTimer()
				refs := make([]name.Reference, 10)
				for i := range refs {
					refs[i] = reg.PushImage(b, reg.Ref(fmt.Sprintf("bench/app%d:v1", n)))
					n++
				}
				b.StartTimer()
				if _, err := s.SignAll(context.Background(), refs, o, 0); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(fake.TSACalls.Load())/float64(b.N), "tsa-requests/op")
		})
	}
}
