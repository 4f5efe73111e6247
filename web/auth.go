package web

import (
	"net/http"
	"net/url"
	"strings"

	"github.com/labstack/echo/v4"

	"quotehub"
	"quotehub/hub"
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

// authenticate finds the request's token — the Authorization header, or,
// where query is true (the stream routes, which browsers cannot give
// headers), a token= query parameter — and verifies it. Without a token it
// returns ok false, or an unauthorized error when required.
func (s *Server) authenticate(r *http.Request, query, required bool) (p quotehub.Principal, ok bool, err error) {
	tok, found := bearer(r)
	if !found && query {
		tok = r.URL.Query().Get("token")
		found = tok != ""
	}
	switch {
	case !found && !required:
		return p, false, nil
	case !found && query:
		return p, false, quotehub.Errorf(quotehub.EUnauthorized, "A token is required: an Authorization: Bearer header, or ?token= on /v1/ws and /v1/sse.")
	case !found:
		return p, false, quotehub.Errorf(quotehub.EUnauthorized, "A bearer token is required.")
	case s.opts.Verifier == nil:
		return p, false, quotehub.Errorf(quotehub.EUnauthorized, "This node accepts no tokens: no JWT key is configured.")
	}
	p, err = s.opts.Verifier.Verify(r.Context(), tok)
	if err != nil {
		return quotehub.Principal{}, false, err
	}
	return p, true, nil
}

// requireUser lets a request through only with a token the Verifier
// accepts, and puts its principal into the request's context
// (quotehub.PrincipalFrom).
func (s *Server) requireUser(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		p, _, err := s.authenticate(c.Request(), false, true)
		if err != nil {
			return err
		}
		c.SetRequest(c.Request().WithContext(quotehub.WithPrincipal(c.Request().Context(), p)))
		return next(c)
	}
}

// requireTokenIf is requireUser for the public quote routes when
// Options.AuthRequired is set; otherwise they stay anonymous.
func (s *Server) requireTokenIf(next echo.HandlerFunc) echo.HandlerFunc {
	if !s.opts.AuthRequired {
		return next
	}
	return s.requireUser(next)
}

// getMe answers GET /v1/me: whom the token names and when it expires
// (Unix ms).
func (s *Server) getMe(c echo.Context) error {
	p, _ := quotehub.PrincipalFrom(c.Request().Context())
	var expires *int64
	if !p.Expires.IsZero() {
		ms := p.Expires.UnixMilli()
		expires = &ms
	}
	return c.JSON(http.StatusOK, map[string]any{"user": p.UserID, "expires": expires})
}

// errTokenExpired is what a stream is told when its token expires.
var errTokenExpired = quotehub.Errorf(quotehub.EUnauthorized, "The token expired; reconnect with a new one.")

// sseExpired is the event an SSE stream gets when its token expires.
var sseExpired = []byte("event: error\ndata: " + string(mustJSON(map[string]string{
	"code": quotehub.ErrorCode(errTokenExpired), "message": quotehub.ErrorMessage(errTokenExpired),
})) + "\n\n")

// streamUser authenticates a stream's handshake (the header or token=,
// required when Options.AuthRequired is set). The caller answers an error
// before the upgrade.
func (s *Server) streamUser(c echo.Context) (quotehub.Principal, bool, error) {
	return s.authenticate(c.Request(), true, s.opts.AuthRequired)
}

// expireSession ends a session whose token expired: frame tells the
// client why (an error frame or event), then the session closes with
// 1008 (policy violation) once that is written.
func expireSession(client *hub.Client, frame []byte) func() {
	return func() {
		client.SendControl(frame)
		client.CloseAfterFlush(hub.ClosePolicy, "token expired")
	}
}

// redactURI replaces the value of every token= query parameter of a
// request URI, so no log line carries a credential.
func redactURI(uri string) string {
	path, query, ok := strings.Cut(uri, "?")
	if !ok {
		return uri
	}
	parts := strings.Split(query, "&")
	for i, kv := range parts {
		k, _, _ := strings.Cut(kv, "=")
		if name, err := url.QueryUnescape(k); err == nil && name == "token" || strings.EqualFold(k, "token") {
			parts[i] = k + "=REDACTED"
		}
	}
	return path + "?" + strings.Join(parts, "&")
}
