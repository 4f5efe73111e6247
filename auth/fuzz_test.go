package auth_test

import (
	"context"
	"testing"

	"github.com/golang-jwt/jwt/v5"

	"quotehub"
	"quotehub/auth"
)

// FuzzVerify: whatever a client sends as a token, the verifier answers
// without panicking, and every refusal is unauthorized; only a token
// signed with the secret is accepted.
func FuzzVerify(f *testing.F) {
	good := sign(f, jwt.SigningMethodHS256, secret, claims(), "")
	for _, s := range []string{good, "", ".", "..", "a.b.c", good + "x", "eyJhbGciOiJub25lIn0.e30.",
		"eyJhbGciOiJIUzI1NiJ9.eyJleHAiOiIxIn0.x", "eyJhbGciOiJIUzI1NiJ9.bnVsbA.x"} {
		f.Add(s)
	}
	v := newVerifier(f, auth.Options{Secret: secret})
	f.Fuzz(func(t *testing.T, tok string) {
		p, err := v.Verify(context.Background(), tok)
		switch {
		case err != nil && quotehub.ErrorCode(err) != quotehub.EUnauthorized:
			t.Fatalf("%q: %v is not unauthorized", tok, err)
		case err == nil && (p.UserID == "" || tok != good):
			t.Fatalf("%q accepted as %+v", tok, p)
		}
	})
}
