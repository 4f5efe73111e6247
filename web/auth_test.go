package web_test

import (
	"context"
	"net/http"
	"testing"

	"quotehub"
	"quotehub/web"
)

// tokens is a Verifier for the routes' own tests: a fixed token per user.
type tokens map[string]string

func (v tokens) Verify(_ context.Context, tok string) (quotehub.Principal, error) {
	if u, ok := v[tok]; ok {
		return quotehub.Principal{UserID: u}, nil
	}
	return quotehub.Principal{}, quotehub.Errorf(quotehub.EUnauthorized, "bad token")
}

func TestRequireUser(t *testing.T) {
	t.Run("NoVerifier", func(t *testing.T) {
		n := startNode(t, nil)
		resp, body := n.get(t, "/v1/me/anything", "Authorization", "Bearer t-alice")
		wantError(t, resp, body, http.StatusUnauthorized, quotehub.EUnauthorized)
	})
	n := startNode(t, func(o *web.Options) { o.Verifier = tokens{"t-alice": "alice"} })
	for _, tc := range []struct{ name, header string }{
		{"Missing", ""},
		{"NotBearer", "Basic YWxpY2U6eA=="},
		{"Empty", "Bearer  "},
		{"Refused", "Bearer t-mallory"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := n.get(t, "/v1/me/anything", "Authorization", tc.header)
			wantError(t, resp, body, http.StatusUnauthorized, quotehub.EUnauthorized)
			if resp.Header.Get("WWW-Authenticate") == "" {
				t.Error("401 without WWW-Authenticate")
			}
		})
	}
	t.Run("Accepted", func(t *testing.T) {
		// Past the check, an unknown path under /v1/me is a plain 404.
		resp, body := n.get(t, "/v1/me/anything", "Authorization", "bearer t-alice")
		wantError(t, resp, body, http.StatusNotFound, quotehub.ENotFound)
	})
}
