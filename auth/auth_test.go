package auth_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"math/big"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"go.uber.org/goleak"

	"quotehub"
	"quotehub/auth"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// now is the fixed clock of the tests.
var now = time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC)

var secret = []byte("0123456789abcdef0123456789abcdef")

// Keys are generated once: RSA generation is slow.
var (
	rsaKey, _   = rsa.GenerateKey(rand.Reader, 2048)
	rsaOther, _ = rsa.GenerateKey(rand.Reader, 2048)
	ecKey, _    = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
)

func pemOf(t testing.TB, pub any) []byte {
	t.Helper()
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
}

// claims are valid claims for alice, issued a minute ago, expiring in an hour.
func claims() jwt.MapClaims {
	return jwt.MapClaims{
		"sub": "alice", "iss": "https://id.example", "aud": "quotehub",
		"iat": now.Add(-time.Minute).Unix(), "exp": now.Add(time.Hour).Unix(),
	}
}

func with(c jwt.MapClaims, k string, v any) jwt.MapClaims {
	if v == nil {
		delete(c, k)
	} else {
		c[k] = v
	}
	return c
}

func sign(t testing.TB, m jwt.SigningMethod, key any, c jwt.MapClaims, kid string) string {
	t.Helper()
	tok := jwt.NewWithClaims(m, c)
	if kid != "" {
		tok.Header["kid"] = kid
	}
	s, err := tok.SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func newVerifier(t testing.TB, o auth.Options) *auth.Verifier {
	t.Helper()
	o.Now = func() time.Time { return now }
	if o.Issuer == "" {
		o.Issuer = "https://id.example"
	}
	if o.Audience == "" {
		o.Audience = "quotehub"
	}
	v, err := auth.New(o)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// wantRefused checks that err is an unauthorized *quotehub.Error whose
// message contains msg.
func wantRefused(t *testing.T, err error, msg string) {
	t.Helper()
	if quotehub.ErrorCode(err) != quotehub.EUnauthorized {
		t.Fatalf("error %v: code %q, want %q", err, quotehub.ErrorCode(err), quotehub.EUnauthorized)
	}
	if got := quotehub.ErrorMessage(err); !strings.Contains(got, msg) {
		t.Fatalf("message %q does not say %q", got, msg)
	}
}

func TestVerifyAccepts(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts auth.Options
		tok  func(t *testing.T) string
	}{
		{"HS256", auth.Options{Secret: secret}, func(t *testing.T) string { return sign(t, jwt.SigningMethodHS256, secret, claims(), "") }},
		{"RS256", auth.Options{PublicKey: &rsaKey.PublicKey}, func(t *testing.T) string { return sign(t, jwt.SigningMethodRS256, rsaKey, claims(), "") }},
		{"ES256", auth.Options{PublicKey: &ecKey.PublicKey}, func(t *testing.T) string { return sign(t, jwt.SigningMethodES256, ecKey, claims(), "") }},
		{"AudienceList", auth.Options{Secret: secret}, func(t *testing.T) string {
			return sign(t, jwt.SigningMethodHS256, secret, with(claims(), "aud", []string{"other", "quotehub"}), "")
		}},
		{"ExpiredWithinLeeway", auth.Options{Secret: secret}, func(t *testing.T) string {
			return sign(t, jwt.SigningMethodHS256, secret, with(claims(), "exp", now.Add(-10*time.Second).Unix()), "")
		}},
		{"NotBeforeWithinLeeway", auth.Options{Secret: secret}, func(t *testing.T) string {
			return sign(t, jwt.SigningMethodHS256, secret, with(claims(), "nbf", now.Add(10*time.Second).Unix()), "")
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := newVerifier(t, tc.opts).Verify(context.Background(), tc.tok(t))
			if err != nil {
				t.Fatal(err)
			}
			if p.UserID != "alice" || p.Expires.IsZero() {
				t.Fatalf("principal %+v", p)
			}
		})
	}
	t.Run("NoIssuerOrAudienceConfigured", func(t *testing.T) {
		v, err := auth.New(auth.Options{Secret: secret, Now: func() time.Time { return now }})
		if err != nil {
			t.Fatal(err)
		}
		tok := sign(t, jwt.SigningMethodHS256, secret, with(with(claims(), "iss", nil), "aud", nil), "")
		p, err := v.Verify(context.Background(), tok)
		if err != nil || p.UserID != "alice" || !p.Expires.Equal(now.Add(time.Hour)) {
			t.Fatalf("got %+v, %v", p, err)
		}
	})
}

func TestVerifyRefuses(t *testing.T) {
	hs := newVerifier(t, auth.Options{Secret: secret})
	rs := newVerifier(t, auth.Options{PublicKey: &rsaKey.PublicKey})
	es := newVerifier(t, auth.Options{PublicKey: &ecKey.PublicKey})
	none, err := jwt.NewWithClaims(jwt.SigningMethodNone, claims()).SignedString(jwt.UnsafeAllowNoneSignatureType)
	if err != nil {
		t.Fatal(err)
	}
	good := sign(t, jwt.SigningMethodHS256, secret, claims(), "")
	parts := strings.Split(good, ".")
	for _, tc := range []struct {
		name string
		v    *auth.Verifier
		tok  string
		msg  string
	}{
		{"Expired", hs, sign(t, jwt.SigningMethodHS256, secret, with(claims(), "exp", now.Add(-time.Hour).Unix()), ""), "expired"},
		{"NoExp", hs, sign(t, jwt.SigningMethodHS256, secret, with(claims(), "exp", nil), ""), "no exp"},
		{"NotYetValid", hs, sign(t, jwt.SigningMethodHS256, secret, with(claims(), "nbf", now.Add(time.Hour).Unix()), ""), "not valid yet"},
		{"IssuedInFuture", hs, sign(t, jwt.SigningMethodHS256, secret, with(claims(), "iat", now.Add(time.Hour).Unix()), ""), "issued in the future"},
		{"AlgNone", hs, none, "signed with none"},
		{"AlgNoneAgainstRSA", rs, none, "signed with none"},
		{"HSAgainstRSAKey", rs, good, "signed with HS256; this node accepts RS256 only"},
		// The key-confusion attack: the RSA public key (which is public)
		// used as the HMAC secret of an HS256 token.
		{"KeyConfusionRSA", rs, sign(t, jwt.SigningMethodHS256, pemOf(t, &rsaKey.PublicKey), claims(), ""), "signed with HS256"},
		{"KeyConfusionEC", es, sign(t, jwt.SigningMethodHS256, pemOf(t, &ecKey.PublicKey), claims(), ""), "signed with HS256"},
		{"RSAgainstECKey", es, sign(t, jwt.SigningMethodRS256, rsaKey, claims(), ""), "signed with RS256; this node accepts ES256 only"},
		{"RSAgainstSecret", hs, sign(t, jwt.SigningMethodRS256, rsaKey, claims(), ""), "accepts HS256 only"},
		{"HS512", hs, sign(t, jwt.SigningMethodHS512, secret, claims(), ""), "signed with HS512"},
		{"UnknownAlg", hs, base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"XX1","typ":"JWT"}`)) + "." + parts[1] + "." + parts[2], "alg is missing or unknown"},
		{"WrongIssuer", hs, sign(t, jwt.SigningMethodHS256, secret, with(claims(), "iss", "https://evil.example"), ""), `iss is not "https://id.example"`},
		{"NoIssuer", hs, sign(t, jwt.SigningMethodHS256, secret, with(claims(), "iss", nil), ""), `no iss; want "https://id.example"`},
		{"WrongAudience", hs, sign(t, jwt.SigningMethodHS256, secret, with(claims(), "aud", "billing"), ""), `aud does not include "quotehub"`},
		{"NoAudience", hs, sign(t, jwt.SigningMethodHS256, secret, with(claims(), "aud", nil), ""), `no aud; want "quotehub"`},
		{"MissingSub", hs, sign(t, jwt.SigningMethodHS256, secret, with(claims(), "sub", nil), ""), "no sub"},
		{"EmptySub", hs, sign(t, jwt.SigningMethodHS256, secret, with(claims(), "sub", ""), ""), "no sub"},
		{"LongSub", hs, sign(t, jwt.SigningMethodHS256, secret, with(claims(), "sub", strings.Repeat("a", 256)), ""), "longer than 255"},
		{"ControlInSub", hs, sign(t, jwt.SigningMethodHS256, secret, with(claims(), "sub", "al\nice"), ""), "control characters"},
		{"ExpNotANumber", hs, sign(t, jwt.SigningMethodHS256, secret, with(claims(), "exp", "tomorrow"), ""), "exp, nbf and iat numbers"},
		{"BadSignatureHS", hs, sign(t, jwt.SigningMethodHS256, []byte("another secret of 32 bytes......"), claims(), ""), "signature does not verify"},
		{"BadSignatureRS", rs, sign(t, jwt.SigningMethodRS256, rsaOther, claims(), ""), "signature does not verify"},
		{"TamperedClaims", hs, parts[0] + "." + base64.RawURLEncoding.EncodeToString([]byte(`{"sub":"mallory","exp":9999999999}`)) + "." + parts[2], "signature does not verify"},
		{"Malformed", hs, "not-a-token", "malformed"},
		{"MalformedBase64", hs, "a.b.c", "malformed"},
		{"TwoParts", hs, parts[0] + "." + parts[1], "malformed"},
		{"Empty", hs, "", "malformed"},
		{"Huge", hs, strings.Repeat("a", 9000), "longer than"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := tc.v.Verify(context.Background(), tc.tok)
			if p != (quotehub.Principal{}) {
				t.Errorf("principal %+v on a refusal", p)
			}
			wantRefused(t, err, tc.msg)
		})
	}
}

func TestNew(t *testing.T) {
	small, _ := rsa.GenerateKey(rand.Reader, 1024)
	p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	for _, tc := range []struct {
		name string
		opts auth.Options
		msg  string
	}{
		{"NoKey", auth.Options{}, "exactly one"},
		{"TwoKeys", auth.Options{Secret: secret, PublicKey: &rsaKey.PublicKey}, "exactly one"},
		{"ShortSecret", auth.Options{Secret: []byte("short")}, "at least 32"},
		{"SmallRSA", auth.Options{PublicKey: &small.PublicKey}, "at least 2048"},
		{"P384", auth.Options{PublicKey: &p384.PublicKey}, "P-256"},
		{"PrivateKeyType", auth.Options{PublicKey: rsaKey}, "not supported"},
		{"RelativeJWKS", auth.Options{JWKSURL: "/keys"}, "not an absolute"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := auth.New(tc.opts)
			if err == nil || !strings.Contains(err.Error(), tc.msg) {
				t.Fatalf("err %v, want one saying %q", err, tc.msg)
			}
		})
	}
}

func TestParsePublicKey(t *testing.T) {
	t.Run("PKIX", func(t *testing.T) {
		k, err := auth.ParsePublicKey(pemOf(t, &rsaKey.PublicKey))
		if err != nil || !rsaKey.PublicKey.Equal(k) {
			t.Fatalf("%v %v", k, err)
		}
	})
	t.Run("PKCS1", func(t *testing.T) {
		b := pem.EncodeToMemory(&pem.Block{Type: "RSA PUBLIC KEY", Bytes: x509.MarshalPKCS1PublicKey(&rsaKey.PublicKey)})
		if _, err := auth.ParsePublicKey(b); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("EC", func(t *testing.T) {
		k, err := auth.ParsePublicKey(pemOf(t, &ecKey.PublicKey))
		if err != nil || !ecKey.PublicKey.Equal(k) {
			t.Fatalf("%v %v", k, err)
		}
	})
	for _, tc := range []struct{ name, in, msg string }{
		{"NotPEM", "hello", "no PEM block"},
		{"PrivateKey", string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: []byte{1}})), "not a public key"},
		{"Garbage", string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: []byte{1, 2, 3}})), "asn1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := auth.ParsePublicKey([]byte(tc.in))
			if err == nil || !strings.Contains(err.Error(), tc.msg) {
				t.Fatalf("err %v, want one saying %q", err, tc.msg)
			}
		})
	}
}

func TestSign(t *testing.T) {
	v, err := auth.New(auth.Options{Secret: secret, Issuer: "qh", Audience: "web", Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	tok, err := auth.Sign(secret, auth.Claims{Subject: "alice", TTL: time.Hour, Issuer: "qh", Audience: "web"}, now)
	if err != nil {
		t.Fatal(err)
	}
	p, err := v.Verify(context.Background(), tok)
	if err != nil || p.UserID != "alice" || !p.Expires.Equal(now.Add(time.Hour)) {
		t.Fatalf("got %+v, %v", p, err)
	}
	for _, tc := range []struct {
		name   string
		secret []byte
		c      auth.Claims
	}{
		{"NoSubject", secret, auth.Claims{TTL: time.Hour}},
		{"NoTTL", secret, auth.Claims{Subject: "alice"}},
		{"ShortSecret", []byte("x"), auth.Claims{Subject: "alice", TTL: time.Hour}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := auth.Sign(tc.secret, tc.c, now); err == nil {
				t.Fatal("signed")
			}
		})
	}
}

// jwk is the JSON Web Key of a public key.
func jwk(kid string, pub any) map[string]string {
	b64 := base64.RawURLEncoding.EncodeToString
	switch k := pub.(type) {
	case *rsa.PublicKey:
		return map[string]string{"kty": "RSA", "kid": kid, "use": "sig", "alg": "RS256", "n": b64(k.N.Bytes()), "e": b64(big.NewInt(int64(k.E)).Bytes())}
	case *ecdsa.PublicKey:
		raw, _ := k.Bytes()
		return map[string]string{"kty": "EC", "kid": kid, "crv": "P-256", "x": b64(raw[1:33]), "y": b64(raw[33:])}
	}
	panic("unsupported key")
}

func jwksDoc(keys ...map[string]string) []byte {
	b, _ := json.Marshal(map[string]any{"keys": keys})
	return b
}

// TestVerifyCache: a token verified once is answered from the cache until
// it expires (with the leeway), then refused like any expired token; a
// full cache makes room.
func TestVerifyCache(t *testing.T) {
	clk := &clock{}
	clk.ns.Store(now.UnixNano())
	v, err := auth.New(auth.Options{Secret: secret, Now: clk.now, CacheSize: 2})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	tok := sign(t, jwt.SigningMethodHS256, secret, claims(), "")
	for range 2 {
		if p, err := v.Verify(ctx, tok); err != nil || p.UserID != "alice" || !p.Expires.Equal(now.Add(time.Hour)) {
			t.Fatalf("got %+v, %v", p, err)
		}
	}
	for i := range 5 { // more tokens than the cache holds
		c := with(claims(), "sub", fmt.Sprintf("user%d", i))
		if p, err := v.Verify(ctx, sign(t, jwt.SigningMethodHS256, secret, c, "")); err != nil || p.UserID != c["sub"] {
			t.Fatalf("user%d: %+v, %v", i, p, err)
		}
	}
	clk.advance(time.Hour + 29*time.Second) // within the leeway
	if _, err := v.Verify(ctx, tok); err != nil {
		t.Fatalf("within the leeway: %v", err)
	}
	clk.advance(2 * time.Second)
	_, err = v.Verify(ctx, tok)
	wantRefused(t, err, "expired")
	_, err = v.Verify(ctx, tok) // and it stays refused
	wantRefused(t, err, "expired")
}
