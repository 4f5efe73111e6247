package auth_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"quotehub"
	"quotehub/auth"
)

// issuer is a JWKS endpoint whose document a test can change, and that
// counts its fetches.
type issuer struct {
	srv     *httptest.Server
	mu      sync.Mutex
	doc     []byte
	status  int
	fetches atomic.Int32
}

func newIssuer(t *testing.T, doc []byte) *issuer {
	is := &issuer{doc: doc, status: http.StatusOK}
	is.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		is.fetches.Add(1)
		is.mu.Lock()
		doc, status := is.doc, is.status
		is.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_, _ = w.Write(doc)
	}))
	t.Cleanup(is.srv.Close)
	return is
}

func (is *issuer) set(doc []byte, status int) {
	is.mu.Lock()
	is.doc, is.status = doc, status
	is.mu.Unlock()
}

// clock is a test clock that only moves when told.
type clock struct{ ns atomic.Int64 }

func (c *clock) now() time.Time          { return time.Unix(0, c.ns.Load()) }
func (c *clock) advance(d time.Duration) { c.ns.Add(int64(d)) }

func jwksVerifier(t *testing.T, url string, clk *clock) *auth.Verifier {
	t.Helper()
	clk.ns.Store(now.UnixNano())
	v, err := auth.New(auth.Options{JWKSURL: url, Now: clk.now, JWKSMinInterval: 10 * time.Second, JWKSMaxAge: time.Hour, JWKSTimeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// primed is an issuer with key r1 and a verifier that has fetched it.
func primed(t *testing.T) (*issuer, *clock, *auth.Verifier) {
	t.Helper()
	is := newIssuer(t, jwksDoc(jwk("r1", &rsaKey.PublicKey)))
	clk := &clock{}
	v := jwksVerifier(t, is.srv.URL, clk)
	if _, err := v.Verify(context.Background(), sign(t, jwt.SigningMethodRS256, rsaKey, claims(), "r1")); err != nil {
		t.Fatal(err)
	}
	return is, clk, v
}

func TestJWKS(t *testing.T) {
	ctx := context.Background()
	t.Run("RS256AndES256", func(t *testing.T) {
		is := newIssuer(t, jwksDoc(jwk("r1", &rsaKey.PublicKey), jwk("e1", &ecKey.PublicKey)))
		v := jwksVerifier(t, is.srv.URL, &clock{})
		for _, tok := range []string{
			sign(t, jwt.SigningMethodRS256, rsaKey, claims(), "r1"),
			sign(t, jwt.SigningMethodES256, ecKey, claims(), "e1"),
			sign(t, jwt.SigningMethodRS256, rsaKey, claims(), "r1"),
		} {
			if p, err := v.Verify(ctx, tok); err != nil || p.UserID != "alice" {
				t.Fatalf("got %+v, %v", p, err)
			}
		}
		if n := is.fetches.Load(); n != 1 {
			t.Errorf("%d fetches for three tokens; want the set cached after one", n)
		}
	})

	t.Run("Refusals", func(t *testing.T) {
		is := newIssuer(t, jwksDoc(jwk("r1", &rsaKey.PublicKey), jwk("e1", &ecKey.PublicKey)))
		v := jwksVerifier(t, is.srv.URL, &clock{})
		for _, tc := range []struct{ name, tok, msg string }{
			{"HS256", sign(t, jwt.SigningMethodHS256, secret, claims(), "r1"), "signed with HS256"},
			{"KeyConfusion", sign(t, jwt.SigningMethodHS256, pemOf(t, &rsaKey.PublicKey), claims(), "r1"), "signed with HS256"},
			{"ESTokenNamingRSAKey", sign(t, jwt.SigningMethodES256, ecKey, claims(), "r1"), "is a RS256 key"},
			{"WrongKeySameKid", sign(t, jwt.SigningMethodRS256, rsaOther, claims(), "r1"), "signature does not verify"},
			{"NoKidTwoKeys", sign(t, jwt.SigningMethodRS256, rsaKey, claims(), ""), "no kid"},
			{"Expired", sign(t, jwt.SigningMethodRS256, rsaKey, with(claims(), "exp", now.Add(-time.Hour).Unix()), "r1"), "expired"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				_, err := v.Verify(ctx, tc.tok)
				wantRefused(t, err, tc.msg)
			})
		}
	})

	t.Run("NoKidOneKey", func(t *testing.T) {
		is := newIssuer(t, jwksDoc(jwk("only", &ecKey.PublicKey)))
		v := jwksVerifier(t, is.srv.URL, &clock{})
		if _, err := v.Verify(ctx, sign(t, jwt.SigningMethodES256, ecKey, claims(), "")); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("RotationWithRateLimit", func(t *testing.T) {
		is := newIssuer(t, jwksDoc(jwk("r1", &rsaKey.PublicKey)))
		clk := &clock{}
		v := jwksVerifier(t, is.srv.URL, clk)
		if _, err := v.Verify(ctx, sign(t, jwt.SigningMethodRS256, rsaKey, claims(), "r1")); err != nil {
			t.Fatal(err)
		}
		// The issuer rotates to r2. A token naming r2 right after the
		// first fetch is refused without a fetch: the rate limit holds.
		is.set(jwksDoc(jwk("r1", &rsaKey.PublicKey), jwk("r2", &rsaOther.PublicKey)), http.StatusOK)
		r2 := sign(t, jwt.SigningMethodRS256, rsaOther, claims(), "r2")
		_, err := v.Verify(ctx, r2)
		wantRefused(t, err, `kid "r2" is not in the issuer's key set`)
		// Forged key ids do not make the node fetch again and again.
		for range 20 {
			_, err := v.Verify(ctx, sign(t, jwt.SigningMethodRS256, rsaOther, claims(), "forged"))
			wantRefused(t, err, "not in the issuer's key set")
		}
		if n := is.fetches.Load(); n != 1 {
			t.Fatalf("%d fetches within the min interval, want 1", n)
		}
		clk.advance(11 * time.Second)
		if _, err := v.Verify(ctx, r2); err != nil {
			t.Fatalf("after the interval: %v", err)
		}
		if n := is.fetches.Load(); n != 2 {
			t.Fatalf("%d fetches, want 2", n)
		}
	})

	t.Run("MaxAgeDropsRetiredKey", func(t *testing.T) {
		is, clk, v := primed(t)
		is.set(jwksDoc(jwk("r2", &rsaOther.PublicKey)), http.StatusOK)
		clk.advance(time.Hour + time.Second)
		// The token was valid an hour ago; move its times along too.
		c := with(with(claims(), "iat", clk.now().Unix()), "exp", clk.now().Add(time.Hour).Unix())
		_, err := v.Verify(ctx, sign(t, jwt.SigningMethodRS256, rsaKey, c, "r1"))
		wantRefused(t, err, "not in the issuer's key set")
	})

	t.Run("IssuerDownKeepsKnownKeys", func(t *testing.T) {
		is, clk, v := primed(t)
		is.set([]byte("oops"), http.StatusInternalServerError)
		clk.advance(2 * time.Hour) // stale: a fetch is tried, fails, the set held is used
		c := with(with(claims(), "iat", clk.now().Unix()), "exp", clk.now().Add(time.Hour).Unix())
		if _, err := v.Verify(ctx, sign(t, jwt.SigningMethodRS256, rsaKey, c, "r1")); err != nil {
			t.Fatalf("known key while the issuer is down: %v", err)
		}
		// An unknown key cannot be checked: unavailable, not a refusal.
		clk.advance(time.Minute)
		c = with(with(claims(), "iat", clk.now().Unix()), "exp", clk.now().Add(time.Hour).Unix())
		_, err := v.Verify(ctx, sign(t, jwt.SigningMethodRS256, rsaOther, c, "r9"))
		if quotehub.ErrorCode(err) != quotehub.EUnavailable {
			t.Fatalf("unknown key while the issuer is down: %v, want %s", err, quotehub.EUnavailable)
		}
	})

	for _, tc := range []struct {
		name   string
		doc    string
		status int
	}{
		{"NotFound", `{}`, http.StatusNotFound},
		{"NotJSON", `<html>`, http.StatusOK},
		{"NoUsableKey", `{"keys":[{"kty":"oct","k":"c2VjcmV0"},{"kty":"EC","crv":"P-384","x":"AA","y":"AA"}]}`, http.StatusOK},
		{"BadRSA", `{"keys":[{"kty":"RSA","kid":"r1","n":"!!","e":"AQAB"}]}`, http.StatusOK},
		{"BadEC", `{"keys":[{"kty":"EC","kid":"r1","crv":"P-256","x":"AAAA","y":"AAAA"}]}`, http.StatusOK},
	} {
		t.Run("Fetch"+tc.name, func(t *testing.T) {
			is := newIssuer(t, []byte(tc.doc))
			is.set([]byte(tc.doc), tc.status)
			v := jwksVerifier(t, is.srv.URL, &clock{})
			_, err := v.Verify(ctx, sign(t, jwt.SigningMethodRS256, rsaKey, claims(), "r1"))
			if quotehub.ErrorCode(err) != quotehub.EUnavailable {
				t.Fatalf("%v, want %s", err, quotehub.EUnavailable)
			}
		})
	}

	t.Run("Timeout", func(t *testing.T) {
		release := make(chan struct{})
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			select {
			case <-release:
			case <-r.Context().Done():
			}
		}))
		t.Cleanup(srv.Close)
		t.Cleanup(func() { close(release) }) // runs before srv.Close
		v, err := auth.New(auth.Options{JWKSURL: srv.URL, Now: func() time.Time { return now }, JWKSTimeout: 50 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		_, err = v.Verify(ctx, sign(t, jwt.SigningMethodRS256, rsaKey, claims(), "r1"))
		if quotehub.ErrorCode(err) != quotehub.EUnavailable {
			t.Fatalf("%v, want %s", err, quotehub.EUnavailable)
		}
	})
}
