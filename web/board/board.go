// Package board serves the live board: a page of plain JavaScript modules
// that search the catalogue and show prices pushed by the node over
// WebSocket or SSE. Its files are embedded in the binary, so the board
// needs nothing but the node it is served from.
package board

import (
	"crypto/sha256"
	"embed"
	"encoding/base64"
	"io/fs"
	"mime"
	"net/http"
	"path"
	"strings"

	"github.com/labstack/echo/v4"
)

//go:embed static
var files embed.FS

// Prefix is the path under which the board's files other than the page
// itself are served.
const Prefix = "/board/"

// CSP allows the page nothing but its own origin: scripts and styles come
// from files of the node (no inline code), and the page talks only to the
// node (WebSocket and SSE included, which 'self' covers).
const CSP = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
	"connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

// file is one embedded file, ready to serve.
type file struct {
	body        []byte
	contentType string
	etag        string
}

// Files serves the board: the page at "/" and its modules, style sheet and
// icon under Prefix. Every file carries a strong ETag (a hash of its
// content) and Cache-Control: no-cache, so a browser revalidates and gets
// a 304 until the binary changes.
type Files struct{ byName map[string]file }

// New reads the embedded files.
func New() *Files {
	f := &Files{byName: map[string]file{}}
	sub, err := fs.Sub(files, "static")
	if err != nil {
		panic(err) // the embed directive guarantees the directory
	}
	err = fs.WalkDir(sub, ".", func(name string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		body, err := fs.ReadFile(sub, name)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(body)
		ct := mime.TypeByExtension(path.Ext(name))
		switch path.Ext(name) { // not left to the system's MIME tables
		case ".js":
			ct = "text/javascript; charset=utf-8"
		case ".css":
			ct = "text/css; charset=utf-8"
		case ".html":
			ct = "text/html; charset=utf-8"
		case ".svg":
			ct = "image/svg+xml"
		}
		f.byName[name] = file{body: body, contentType: ct,
			etag: `"` + base64.RawURLEncoding.EncodeToString(sum[:12]) + `"`}
		return nil
	})
	if err != nil {
		panic(err)
	}
	return f
}

// Register adds the board's routes to e: GET / and GET Prefix+file. Any
// other path is left to e, so unknown API paths keep their JSON 404.
func (f *Files) Register(e *echo.Echo) {
	e.GET("/", func(c echo.Context) error { return f.serve(c, "index.html") })
	e.GET(Prefix+":file", func(c echo.Context) error { return f.serve(c, c.Param("file")) })
}

func (f *Files) serve(c echo.Context, name string) error {
	fl, ok := f.byName[name]
	if !ok || strings.Contains(name, "/") {
		return echo.ErrNotFound
	}
	h := c.Response().Header()
	h.Set("Content-Security-Policy", CSP)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Cache-Control", "no-cache")
	h.Set("ETag", fl.etag)
	if etagMatch(c.Request().Header.Get("If-None-Match"), fl.etag) {
		return c.NoContent(http.StatusNotModified)
	}
	return c.Blob(http.StatusOK, fl.contentType, fl.body)
}

// etagMatch reports whether an If-None-Match header names etag (weak
// comparison, as RFC 9110 asks for If-None-Match).
func etagMatch(header, etag string) bool {
	for _, t := range strings.Split(header, ",") {
		t = strings.TrimPrefix(strings.TrimSpace(t), "W/")
		if t == etag || t == "*" {
			return true
		}
	}
	return false
}
