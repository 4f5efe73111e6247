package web

import (
	"net/http"
	"strings"

	"github.com/labstack/echo/v4"

	"quotehub"
)

// bearer returns the token of an "Authorization: Bearer" header.
func bearer(r *http.Request) (string, bool) {
	scheme, tok, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	tok = strings.TrimSpace(tok)
	return tok, tok != ""
}

// requireUser lets a request through only with a token the Verifier
// accepts, and puts its principal into the request's context
// (quotehub.PrincipalFrom).
func (s *Server) requireUser(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		if s.opts.Verifier == nil {
			return quotehub.Errorf(quotehub.EUnauthorized, "This node accepts no tokens: no JWT key is configured.")
		}
		tok, ok := bearer(c.Request())
		if !ok {
			return quotehub.Errorf(quotehub.EUnauthorized, "A bearer token is required.")
		}
		ctx := c.Request().Context()
		p, err := s.opts.Verifier.Verify(ctx, tok)
		if err != nil {
			return err
		}
		c.SetRequest(c.Request().WithContext(quotehub.WithPrincipal(ctx, p)))
		return next(c)
	}
}
