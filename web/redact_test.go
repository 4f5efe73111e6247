package web

import "testing"

func TestRedactURI(t *testing.T) {
	for in, want := range map[string]string{
		"/v1/ws":                           "/v1/ws",
		"/v1/ws?symbols=A,B":               "/v1/ws?symbols=A,B",
		"/v1/ws?token=abc":                 "/v1/ws?token=REDACTED",
		"/v1/sse?symbols=A&token=abc&x=1":  "/v1/sse?symbols=A&token=REDACTED&x=1",
		"/v1/sse?%74oken=abc":              "/v1/sse?%74oken=REDACTED",
		"/v1/sse?TOKEN=abc":                "/v1/sse?TOKEN=REDACTED",
		"/v1/sse?token=a&token=b":          "/v1/sse?token=REDACTED&token=REDACTED",
		"/v1/sse?token":                    "/v1/sse?token=REDACTED",
		"/v1/sse?tokens=keep&mytoken=keep": "/v1/sse?tokens=keep&mytoken=keep",
		"/v1/sse?%zz=1&token=abc":          "/v1/sse?%zz=1&token=REDACTED",
	} {
		if got := redactURI(in); got != want {
			t.Errorf("redactURI(%q) = %q, want %q", in, got, want)
		}
	}
}
