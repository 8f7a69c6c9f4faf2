package tlog

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"

	"github.com/go-openapi/strfmt"
	"github.com/sigstore/protobuf-specs/gen/pb-go/common/v1"
	rekorpb "github.com/sigstore/protobuf-specs/gen/pb-go/rekor/v1"
	"github.com/sigstore/rekor-tiles/v2/pkg/generated/protobuf"
	"github.com/sigstore/rekor/pkg/generated/models"
	"github.com/sigstore/sigstore/pkg/cryptoutils"
	"google.golang.org/protobuf/encoding/protojson"
)

// bodyHeader is what every entry body starts with.
type bodyHeader struct {
	Kind       string          `json:"kind"`
	APIVersion string          `json:"apiVersion"`
	Spec       json.RawMessage `json:"spec"`
}

// kindOf reads an entry body's kind and version.
func kindOf(body []byte) (bodyHeader, error) {
	var h bodyHeader
	if err := json.Unmarshal(body, &h); err != nil {
		return h, fmt.Errorf("%w: body is not JSON: %v", ErrInvalid, err)
	}
	return h, nil
}

// bind checks that the entry body records exactly w: the same digest, the
// same signature bytes and the same public key. It returns "kind/version".
func bind(body []byte, kv *rekorpb.KindVersion, w Want) (string, error) {
	if len(body) == 0 {
		return "", fmt.Errorf("%w: no entry body", ErrInvalid)
	}
	if len(body) > MaxBodyBytes {
		return "", fmt.Errorf("%w: entry body of %d bytes (limit %d)", ErrInvalid, len(body), MaxBodyBytes)
	}
	h, err := kindOf(body)
	if err != nil {
		return "", err
	}
	kind := h.Kind + "/" + h.APIVersion
	if kv != nil && (kv.GetKind() != h.Kind || kv.GetVersion() != h.APIVersion) {
		return "", fmt.Errorf("%w: entry says kind %s/%s, its body %s", ErrInvalid, kv.GetKind(), kv.GetVersion(), kind)
	}
	wantDER, err := x509.MarshalPKIXPublicKey(w.PublicKey)
	if err != nil {
		return "", fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	var digest, sig, keyDER []byte
	switch {
	case h.Kind == KindHashedRekord && h.APIVersion == VersionV001:
		digest, sig, keyDER, err = hashedRekordV001(h.Spec)
	case h.Kind == KindHashedRekord && h.APIVersion == VersionV002:
		digest, sig, keyDER, err = hashedRekordV002(body)
	case h.Kind == KindDSSE && h.APIVersion == VersionV001:
		return kind, bindDSSEV001(h.Spec, w, wantDER)
	case h.Kind == KindIntoto && h.APIVersion == VersionV002:
		return kind, bindIntotoV002(h.Spec, w, wantDER)
	default:
		return "", fmt.Errorf("%w: entry kind %s is not supported (only hashedrekord 0.0.1 and 0.0.2, dsse 0.0.1, intoto 0.0.2)", ErrInvalid, kind)
	}
	if err != nil {
		return "", err
	}
	switch {
	case !bytes.Equal(digest, w.Digest):
		return "", fmt.Errorf("%w: the entry records digest sha256:%x, not this signature's payload (sha256:%x)", ErrInvalid, digest, w.Digest)
	case !bytes.Equal(sig, w.Signature):
		return "", fmt.Errorf("%w: the entry records another signature than this one", ErrInvalid)
	case !bytes.Equal(keyDER, wantDER):
		return "", fmt.Errorf("%w: the entry records another public key than the one that signed", ErrInvalid)
	}
	return kind, nil
}

// hashedRekordV001 returns the digest, signature and PKIX key of a Rekor v1
// hashedrekord spec.
func hashedRekordV001(spec json.RawMessage) (digest, sig, keyDER []byte, err error) {
	var s models.HashedrekordV001Schema
	dec := json.NewDecoder(bytes.NewReader(spec))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&s); err != nil {
		return nil, nil, nil, fmt.Errorf("%w: hashedrekord spec: %v", ErrInvalid, err)
	}
	if s.Data == nil || s.Data.Hash == nil || s.Data.Hash.Algorithm == nil || s.Data.Hash.Value == nil ||
		s.Signature == nil || s.Signature.PublicKey == nil {
		return nil, nil, nil, fmt.Errorf("%w: hashedrekord spec lacks its hash, signature or key", ErrInvalid)
	}
	if *s.Data.Hash.Algorithm != models.HashedrekordV001SchemaDataHashAlgorithmSha256 {
		return nil, nil, nil, fmt.Errorf("%w: hashedrekord hash algorithm %q (want sha256)", ErrInvalid, *s.Data.Hash.Algorithm)
	}
	if digest, err = hex.DecodeString(*s.Data.Hash.Value); err != nil {
		return nil, nil, nil, fmt.Errorf("%w: hashedrekord hash is not hex", ErrInvalid)
	}
	key, err := cryptoutils.UnmarshalPEMToPublicKey(s.Signature.PublicKey.Content)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("%w: hashedrekord public key (a certificate is not accepted): %v", ErrInvalid, err)
	}
	if keyDER, err = x509.MarshalPKIXPublicKey(key); err != nil {
		return nil, nil, nil, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	return digest, s.Signature.Content, keyDER, nil
}

// maxDSSEEntrySignatures bounds the signatures of a dsse entry considered.
const maxDSSEEntrySignatures = 8

// bindDSSEV001 checks that a Rekor v1 dsse entry records w: the envelope's
// payload hash, and this signature by this key among its signatures.
func bindDSSEV001(spec json.RawMessage, w Want, wantDER []byte) error {
	if w.Envelope == nil {
		return fmt.Errorf("%w: a dsse entry cannot record a signature that is not over a DSSE envelope", ErrInvalid)
	}
	var s models.DSSEV001Schema
	dec := json.NewDecoder(bytes.NewReader(spec))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&s); err != nil {
		return fmt.Errorf("%w: dsse spec: %v", ErrInvalid, err)
	}
	if s.PayloadHash == nil || s.PayloadHash.Algorithm == nil || s.PayloadHash.Value == nil ||
		*s.PayloadHash.Algorithm != models.DSSEV001SchemaPayloadHashAlgorithmSha256 {
		return fmt.Errorf("%w: dsse entry without a SHA-256 payload hash", ErrInvalid)
	}
	if err := recordsPayload(*s.PayloadHash.Value, w); err != nil {
		return err
	}
	if len(s.Signatures) > maxDSSEEntrySignatures {
		return fmt.Errorf("%w: dsse entry with %d signatures (limit %d)", ErrInvalid, len(s.Signatures), maxDSSEEntrySignatures)
	}
	for _, sig := range s.Signatures {
		if sig != nil && sig.Signature != nil && sig.Verifier != nil && recordsSignature(*sig.Signature, *sig.Verifier, w, wantDER) {
			return nil
		}
	}
	return errNotRecorded
}

// errNotRecorded: no signature an entry records is this one by this key.
var errNotRecorded = fmt.Errorf("%w: the entry does not record this signature by this key", ErrInvalid)

// recordsPayload checks that an entry's payload hash (hex SHA-256) is
// that of w's envelope payload.
func recordsPayload(hexHash string, w Want) error {
	if want := sha256.Sum256(w.Envelope.Payload); hexHash != hex.EncodeToString(want[:]) {
		return fmt.Errorf("%w: the entry records payload sha256:%s, not this envelope's (sha256:%x)", ErrInvalid, hexHash, want)
	}
	return nil
}

// recordsSignature reports whether one signature an entry records, its
// base64 text and its key's PEM, is w's signature by the key whose PKIX
// DER is wantDER.
func recordsSignature(sigB64 string, keyPEM []byte, w Want, wantDER []byte) bool {
	raw, err := b64.DecodeString(sigB64)
	if err != nil || !bytes.Equal(raw, w.Signature) {
		return false
	}
	key, err := cryptoutils.UnmarshalPEMToPublicKey(keyPEM)
	if err != nil {
		return false
	}
	der, err := x509.MarshalPKIXPublicKey(key)
	return err == nil && bytes.Equal(der, wantDER)
}

// dsseV001Request is the proposed entry a Rekor v1 upload of a DSSE
// signature sends: the envelope and the verifying key.
func dsseV001Request(w Want) (*models.DSSE, error) {
	pemKey, err := cryptoutils.MarshalPublicKeyToPEM(w.PublicKey)
	if err != nil {
		return nil, err
	}
	env := w.Envelope.Raw
	if env == nil {
		env, err = json.Marshal(map[string]any{
			"payloadType": w.Envelope.PayloadType,
			"payload":     b64.EncodeToString(w.Envelope.Payload),
			"signatures":  []map[string]string{{"sig": b64.EncodeToString(w.Signature)}},
		})
		if err != nil {
			return nil, err
		}
	}
	envs := string(env)
	return &models.DSSE{
		APIVersion: strPtr(VersionV001),
		Spec:       models.DSSEV001Schema{ProposedContent: &models.DSSEV001SchemaProposedContent{Envelope: &envs, Verifiers: []strfmt.Base64{pemKey}}},
	}, nil
}

// hashedRekordV002 returns the digest, signature and PKIX key of a Rekor v2
// hashedrekord entry body.
func hashedRekordV002(body []byte) (digest, sig, keyDER []byte, err error) {
	var e protobuf.Entry
	if err := protojson.Unmarshal(body, &e); err != nil {
		return nil, nil, nil, fmt.Errorf("%w: hashedrekord 0.0.2 body: %v", ErrInvalid, err)
	}
	hr := e.GetSpec().GetHashedRekordV002()
	if hr == nil {
		return nil, nil, nil, fmt.Errorf("%w: hashedrekord 0.0.2 body has no hashedrekord spec", ErrInvalid)
	}
	if hr.GetData().GetAlgorithm() != v1.HashAlgorithm_SHA2_256 {
		return nil, nil, nil, fmt.Errorf("%w: hashedrekord hash algorithm %v (want SHA2_256)", ErrInvalid, hr.GetData().GetAlgorithm())
	}
	raw := hr.GetSignature().GetVerifier().GetPublicKey().GetRawBytes()
	if len(raw) == 0 {
		return nil, nil, nil, fmt.Errorf("%w: hashedrekord verifier is not a public key (certificates are not accepted)", ErrInvalid)
	}
	key, err := x509.ParsePKIXPublicKey(raw)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("%w: hashedrekord public key: %v", ErrInvalid, err)
	}
	if keyDER, err = x509.MarshalPKIXPublicKey(key); err != nil {
		return nil, nil, nil, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	return hr.GetData().GetDigest(), hr.GetSignature().GetContent(), keyDER, nil
}

// hashedRekordV001Request is the proposed entry a Rekor v1 upload sends.
func hashedRekordV001Request(w Want) (*models.Hashedrekord, error) {
	pemKey, err := cryptoutils.MarshalPublicKeyToPEM(w.PublicKey)
	if err != nil {
		return nil, err
	}
	alg, value := models.HashedrekordV001SchemaDataHashAlgorithmSha256, hex.EncodeToString(w.Digest)
	return &models.Hashedrekord{
		APIVersion: strPtr(VersionV001),
		Spec: models.HashedrekordV001Schema{
			Data:      &models.HashedrekordV001SchemaData{Hash: &models.HashedrekordV001SchemaDataHash{Algorithm: &alg, Value: &value}},
			Signature: &models.HashedrekordV001SchemaSignature{Content: w.Signature, PublicKey: &models.HashedrekordV001SchemaSignaturePublicKey{Content: pemKey}},
		},
	}, nil
}

// hashedRekordV002Request is the request a Rekor v2 upload sends.
func hashedRekordV002Request(w Want) (*protobuf.CreateEntryRequest, error) {
	der, err := x509.MarshalPKIXPublicKey(w.PublicKey)
	if err != nil {
		return nil, err
	}
	details, err := keyDetails(w.PublicKey)
	if err != nil {
		return nil, err
	}
	return &protobuf.CreateEntryRequest{Spec: &protobuf.CreateEntryRequest_HashedRekordRequestV002{
		HashedRekordRequestV002: &protobuf.HashedRekordRequestV002{
			Digest: w.Digest,
			Signature: &protobuf.Signature{
				Content:  w.Signature,
				Verifier: &protobuf.Verifier{Verifier: &protobuf.Verifier_PublicKey{PublicKey: &protobuf.PublicKey{RawBytes: der}}, KeyDetails: details},
			},
		},
	}}, nil
}

// keyDetails names a key's algorithm as Sigstore does, for signatures over
// SHA-256 (how imgsign signs with every key but Ed25519).
func keyDetails(key crypto.PublicKey) (v1.PublicKeyDetails, error) {
	switch k := key.(type) {
	case *ecdsa.PublicKey:
		switch k.Curve {
		case elliptic.P256():
			return v1.PublicKeyDetails_PKIX_ECDSA_P256_SHA_256, nil
		case elliptic.P384():
			return v1.PublicKeyDetails_PKIX_ECDSA_P384_SHA_256, nil
		case elliptic.P521():
			return v1.PublicKeyDetails_PKIX_ECDSA_P521_SHA_256, nil
		}
	case *rsa.PublicKey:
		switch k.N.BitLen() {
		case 2048:
			return v1.PublicKeyDetails_PKIX_RSA_PKCS1V15_2048_SHA256, nil
		case 3072:
			return v1.PublicKeyDetails_PKIX_RSA_PKCS1V15_3072_SHA256, nil
		case 4096:
			return v1.PublicKeyDetails_PKIX_RSA_PKCS1V15_4096_SHA256, nil
		}
	case ed25519.PublicKey:
		return v1.PublicKeyDetails_PKIX_ED25519, nil
	}
	return 0, fmt.Errorf("key type %T is not supported by the log", key)
}

func strPtr(s string) *string { return &s }

// b64 is the standard base64 encoding used throughout Rekor's JSON.
var b64 = base64.StdEncoding

// bindIntotoV002 checks that a Rekor v1 intoto 0.0.2 entry records w: the
// envelope's payload hash, and this signature by this key among the
// envelope signatures it records. Its canonical form keeps the payload
// hash, not the payload; a payload it does keep must be this one.
func bindIntotoV002(spec json.RawMessage, w Want, wantDER []byte) error {
	if w.Envelope == nil {
		return fmt.Errorf("%w: an intoto entry cannot record a signature that is not over a DSSE envelope", ErrInvalid)
	}
	var s models.IntotoV002Schema
	dec := json.NewDecoder(bytes.NewReader(spec))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&s); err != nil {
		return fmt.Errorf("%w: intoto spec: %v", ErrInvalid, err)
	}
	c := s.Content
	if c == nil || c.Envelope == nil || c.PayloadHash == nil || c.PayloadHash.Algorithm == nil || c.PayloadHash.Value == nil ||
		*c.PayloadHash.Algorithm != models.IntotoV002SchemaContentPayloadHashAlgorithmSha256 {
		return fmt.Errorf("%w: intoto entry without an envelope and a SHA-256 payload hash", ErrInvalid)
	}
	if err := recordsPayload(*c.PayloadHash.Value, w); err != nil {
		return err
	}
	env := c.Envelope
	if env.PayloadType == nil || *env.PayloadType != w.Envelope.PayloadType {
		return fmt.Errorf("%w: the entry records another payload type than this envelope's", ErrInvalid)
	}
	if len(env.Payload) > 0 && !bytes.Equal(env.Payload, w.Envelope.Payload) {
		return fmt.Errorf("%w: the entry records another payload than this envelope's", ErrInvalid)
	}
	if len(env.Signatures) > maxDSSEEntrySignatures {
		return fmt.Errorf("%w: intoto entry with %d signatures (limit %d)", ErrInvalid, len(env.Signatures), maxDSSEEntrySignatures)
	}
	for _, sig := range env.Signatures {
		// The entry keeps the envelope's signature as it is written in
		// the envelope: base64 text.
		if sig != nil && sig.Sig != nil && sig.PublicKey != nil && recordsSignature(string(*sig.Sig), *sig.PublicKey, w, wantDER) {
			return nil
		}
	}
	return errNotRecorded
}
