package keyless_test

import (
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/imgsign/imgsign/pkg/keyless"
	protobundle "github.com/sigstore/protobuf-specs/gen/pb-go/bundle/v1"
	protocommon "github.com/sigstore/protobuf-specs/gen/pb-go/common/v1"
	protodsse "github.com/sigstore/protobuf-specs/gen/pb-go/dsse"
	protorekor "github.com/sigstore/protobuf-specs/gen/pb-go/rekor/v1"
	"github.com/sigstore/sigstore-go/pkg/testing/ca"
	sgtlog "github.com/sigstore/sigstore-go/pkg/tlog"
	"github.com/sigstore/sigstore/pkg/cryptoutils"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
)

// pae is the DSSE pre-authentication encoding.
func pae(payloadType string, payload []byte) []byte {
	return []byte(fmt.Sprintf("DSSEv1 %d %s %d %s", len(payloadType), payloadType, len(payload), payload))
}

// TestDSSEWithHashedRekordEntry: a DSSE envelope logged to Rekor v1 as a
// hashedrekord entry over the digest of its PAE (the client spec's "bundle
// content vs. Rekor entry kind") verifies, through Verify and VerifyDSSE
// alike, exactly when the entry records this envelope: its PAE digest,
// its signature, its certificate. Each bundle is built here: a leaf
// certificate of a virtual Sigstore, an entry body and its SET signed by
// the virtual Rekor, an RFC 3161 timestamp.
func TestDSSEWithHashedRekordEntry(t *testing.T) {
	vs, err := ca.NewVirtualSigstore()
	if err != nil {
		t.Fatal(err)
	}
	tr := trustedRootOf(t, vs)
	cert, priv, err := vs.GenerateLeafCert(benchSubject, benchIssuer)
	if err != nil {
		t.Fatal(err)
	}
	key := priv.(*ecdsa.PrivateKey)
	certPEM, err := cryptoutils.MarshalCertificateToPEM(cert)
	if err != nil {
		t.Fatal(err)
	}
	logIDHex, err := vs.RekorLogID()
	if err != nil {
		t.Fatal(err)
	}
	logID, _ := hex.DecodeString(logIDHex)
	const pt = "application/vnd.in-toto+json"
	statement := func(subject [32]byte, note string) []byte {
		return []byte(`{"_type":"https://in-toto.io/Statement/v1","subject":[{"name":"a","digest":{"sha256":"` + hex.EncodeToString(subject[:]) + `"}}],"predicateType":"https://example.com/p","predicate":{"note":"` + note + `"}}`)
	}
	sign := func(payload []byte) []byte {
		h := sha256.Sum256(pae(pt, payload))
		sig, err := ecdsa.SignASN1(rand.Reader, key, h[:])
		if err != nil {
			t.Fatal(err)
		}
		return sig
	}
	// entry is a hashedrekord entry recording digest and sig, with a SET.
	entry := func(digest, sig []byte) *protorekor.TransparencyLogEntry {
		body, err := json.Marshal(map[string]any{"apiVersion": "0.0.1", "kind": "hashedrekord", "spec": map[string]any{
			"data":      map[string]any{"hash": map[string]any{"algorithm": "sha256", "value": hex.EncodeToString(digest)}},
			"signature": map[string]any{"content": base64.StdEncoding.EncodeToString(sig), "publicKey": map[string]any{"content": base64.StdEncoding.EncodeToString(certPEM)}},
		}})
		if err != nil {
			t.Fatal(err)
		}
		integrated := time.Now().Add(time.Minute).Unix()
		set, err := vs.RekorSignPayload(sgtlog.RekorPayload{Body: base64.StdEncoding.EncodeToString(body), IntegratedTime: integrated, LogIndex: 7, LogID: logIDHex})
		if err != nil {
			t.Fatal(err)
		}
		proof, err := vs.GetInclusionProof(body)
		if err != nil {
			t.Fatal(err)
		}
		en, err := sgtlog.NewEntry(body, integrated, *proof.LogIndex, logID, set, proof) //nolint:staticcheck // as the virtual Sigstore builds its entries
		if err != nil {
			t.Fatal(err)
		}
		tle := proto.Clone(en.TransparencyLogEntry()).(*protorekor.TransparencyLogEntry)
		tle.KindVersion = &protorekor.KindVersion{Kind: "hashedrekord", Version: "0.0.1"}
		return tle
	}
	bundle := func(payload, sig []byte, tle *protorekor.TransparencyLogEntry) []byte {
		tsr, err := vs.TimestampResponse(sig)
		if err != nil {
			t.Fatal(err)
		}
		data, err := protojson.Marshal(&protobundle.Bundle{
			MediaType: "application/vnd.dev.sigstore.bundle.v0.3+json",
			VerificationMaterial: &protobundle.VerificationMaterial{
				Content:                   &protobundle.VerificationMaterial_Certificate{Certificate: &protocommon.X509Certificate{RawBytes: cert.Raw}},
				TlogEntries:               []*protorekor.TransparencyLogEntry{tle},
				TimestampVerificationData: &protobundle.TimestampVerificationData{Rfc3161Timestamps: []*protocommon.RFC3161SignedTimestamp{{SignedTimestamp: tsr}}},
			},
			Content: &protobundle.Bundle_DsseEnvelope{DsseEnvelope: &protodsse.Envelope{PayloadType: pt, Payload: payload, Signatures: []*protodsse.Signature{{Sig: sig}}}},
		})
		if err != nil {
			t.Fatal(err)
		}
		return data
	}
	artifact := sha256.Sum256([]byte("the artifact"))
	a, b := statement(artifact, "A"), statement(artifact, "B")
	sigA, sigB, sigA2 := sign(a), sign(b), sign(a)
	paeA := sha256.Sum256(pae(pt, a))
	o := keyless.Options{Trusted: tr, Identities: []keyless.Identity{{Subject: benchSubject, Issuer: benchIssuer}}, IgnoreSCT: true}
	for _, c := range []struct {
		name     string
		bundle   []byte
		artifact [32]byte
		want     string // "" passes
	}{
		{"the logged envelope", bundle(a, sigA, entry(paeA[:], sigA)), artifact, ""},
		{"another envelope of the same key", bundle(b, sigB, entry(paeA[:], sigA)), artifact, `hashedrekord entry digest sha256:[0-9a-f]+ does not match the envelope's PAE digest`},
		{"the same envelope signed again", bundle(a, sigA2, entry(paeA[:], sigA)), artifact, `transparency log signature does not match`},
		{"another artifact", bundle(a, sigA, entry(paeA[:], sigA)), sha256.Sum256([]byte("another")), `over this artifact`},
	} {
		t.Run(c.name, func(t *testing.T) {
			e, err := keyless.ParseBundle(c.bundle)
			if err != nil {
				t.Fatal(err)
			}
			_, whole := keyless.Verify(e, keyless.Artifact{Algorithm: "sha256", Digest: c.artifact[:]}, o)
			env := e.GetDsseEnvelope()
			_, inPlace := keyless.VerifyDSSE(e, keyless.DSSE{PayloadType: env.GetPayloadType(), Payload: env.GetPayload(), Signature: env.GetSignatures()[0].GetSig()}, o)
			for name, err := range map[string]error{"Verify": whole, "VerifyDSSE": inPlace} {
				if name == "VerifyDSSE" && strings.Contains(c.want, "artifact") {
					continue // the subject is the caller's to check
				}
				switch {
				case c.want == "" && err != nil:
					t.Fatalf("%s: %v", name, err)
				case c.want == "":
				case err == nil:
					t.Fatalf("%s verified", name)
				case !regexp.MustCompile(c.want).MatchString(err.Error()):
					t.Fatalf("%s: %v, want /%s/", name, err, c.want)
				}
			}
		})
	}
}
