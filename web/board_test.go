package web_test

import (
	"net/http"
	"regexp"
	"strings"
	"testing"

	"quotehub/web/board"
)

// TestBoardFiles: the page and every module it imports, found by following
// the imports from app.js, are served from the binary with their content
// type, the 'self'-only Content-Security-Policy, nosniff, and an ETag that
// answers a revalidation with 304.
func TestBoardFiles(t *testing.T) {
	n := startNode(t, nil)
	wantType := map[string]string{".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8",
		".svg": "image/svg+xml", "/": "text/html; charset=utf-8"}
	importRe := regexp.MustCompile(`(?m)^import .* from '\./([a-z]+\.js)';$`)

	queue := []string{"/", "/board/app.js", "/board/style.css", "/board/favicon.svg"}
	seen := map[string]bool{}
	for len(queue) > 0 {
		path := queue[0]
		queue = queue[1:]
		if seen[path] {
			continue
		}
		seen[path] = true
		resp, body := n.get(t, path)
		ext := path[strings.LastIndex(path, "/"):]
		if i := strings.LastIndex(ext, "."); i >= 0 {
			ext = ext[i:]
		}
		h := resp.Header
		if resp.StatusCode != http.StatusOK || h.Get("Content-Type") != wantType[ext] || len(body) == 0 {
			t.Fatalf("GET %s: %d %q (%d bytes), want 200 %q", path, resp.StatusCode, h.Get("Content-Type"), len(body), wantType[ext])
		}
		if h.Get("Content-Security-Policy") != board.CSP || h.Get("X-Content-Type-Options") != "nosniff" ||
			h.Get("Cache-Control") != "no-cache" || h.Get("ETag") == "" {
			t.Errorf("GET %s: headers %v, want the CSP, nosniff, no-cache and an ETag", path, h)
		}
		etag := h.Get("ETag")
		for _, inm := range []string{etag, "W/" + etag, `"other", ` + etag, "*"} {
			r, b := n.get(t, path, "If-None-Match", inm)
			if r.StatusCode != http.StatusNotModified || len(b) != 0 || r.Header.Get("ETag") != etag {
				t.Errorf("GET %s with If-None-Match %s: %d (%d bytes), want 304 and no body", path, inm, r.StatusCode, len(b))
			}
		}
		if r, _ := n.get(t, path, "If-None-Match", `"stale"`); r.StatusCode != http.StatusOK {
			t.Errorf("GET %s with an old ETag: %d, want 200", path, r.StatusCode)
		}
		for _, m := range importRe.FindAllStringSubmatch(string(body), -1) {
			queue = append(queue, board.Prefix+m[1])
		}
	}
	if len(seen) < 10 {
		t.Errorf("followed the imports to %d files only: %v", len(seen), seen)
	}
	if !strings.Contains(board.CSP, "script-src 'self';") || strings.Contains(board.CSP, "unsafe") {
		t.Errorf("CSP %q must allow scripts from 'self' only", board.CSP)
	}

	_, page := n.get(t, "/")
	if regexp.MustCompile(`<script(?:\s+type="module")?>|\sstyle=|\son[a-z]+=`).Match(page) {
		t.Error("the page has inline script, style or handlers, which its CSP refuses")
	}
}

// TestBoardLeavesOtherPathsToTheAPI: only / and the board's own files are
// the board's; any other path, API or not, is the JSON 404, and a method
// other than GET is the JSON 405.
func TestBoardLeavesOtherPathsToTheAPI(t *testing.T) {
	n := startNode(t, nil)
	for _, path := range []string{"/v1/nope", "/v1/", "/nope", "/index.html", "/board/", "/board/nope.js",
		"/board/static/app.js", "/board/..%2Fboard.go", "/board/app.js/x"} {
		resp, body := n.get(t, path)
		wantError(t, resp, body, http.StatusNotFound, "not_found")
	}
	resp, body := n.do(t, http.MethodPost, "/")
	wantError(t, resp, body, http.StatusMethodNotAllowed, "bad_request")
	resp, body = n.do(t, http.MethodDelete, "/board/app.js")
	wantError(t, resp, body, http.StatusMethodNotAllowed, "bad_request")
}
