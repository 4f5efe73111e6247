package auth_test

import (
	"context"
	"testing"

	"github.com/golang-jwt/jwt/v5"

	"quotehub/auth"
)

// BenchmarkVerify is the cost a token adds to a request or a stream
// handshake, per key type: the first time (uncached) and again.
func BenchmarkVerify(b *testing.B) {
	for _, bc := range []struct {
		name string
		opts auth.Options
		tok  string
	}{
		{"HS256", auth.Options{Secret: secret}, sign(b, jwt.SigningMethodHS256, secret, claims(), "")},
		{"RS256", auth.Options{PublicKey: &rsaKey.PublicKey}, sign(b, jwt.SigningMethodRS256, rsaKey, claims(), "")},
		{"ES256", auth.Options{PublicKey: &ecKey.PublicKey}, sign(b, jwt.SigningMethodES256, ecKey, claims(), "")},
	} {
		for _, cache := range []int{-1, 0} {
			name := bc.name + "/cached"
			if cache < 0 {
				name = bc.name + "/uncached"
			}
			b.Run(name, func(b *testing.B) {
				o := bc.opts
				o.CacheSize = cache
				v := newVerifier(b, o)
				ctx := context.Background()
				b.ReportAllocs()
				for b.Loop() {
					if _, err := v.Verify(ctx, bc.tok); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}
