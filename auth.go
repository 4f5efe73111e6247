package quotehub

import (
	"context"
	"time"
)

// Principal is whom a request or a session acts for: the user named by a
// token that the application owning the users issued. quotehub stores no
// passwords; it trusts the token's signature.
type Principal struct {
	UserID  string    // the token's "sub"
	Expires time.Time // the token's "exp"; zero when it has none
}

// Verifier checks a bearer token and returns the principal it names. A
// token that is missing, malformed, expired or signed by the wrong key is
// an *Error with code EUnauthorized; any other error means the verifier
// could not decide (for example a key set it could not fetch).
type Verifier interface {
	Verify(ctx context.Context, token string) (Principal, error)
}

type principalKey struct{}

// WithPrincipal returns a context that carries p.
func WithPrincipal(ctx context.Context, p Principal) context.Context {
	return context.WithValue(ctx, principalKey{}, p)
}

// PrincipalFrom returns the principal ctx carries, if any.
func PrincipalFrom(ctx context.Context) (Principal, bool) {
	p, ok := ctx.Value(principalKey{}).(Principal)
	return p, ok
}
