package web

import (
	"bytes"
	"compress/gzip"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
)

func get(t *testing.T, h http.Handler, method, target string, hdr map[string]string) *http.Response {
	t.Helper()
	req := httptest.NewRequest(method, target, nil)
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec.Result()
}

func body(t *testing.T, res *http.Response) string {
	t.Helper()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// assetRefs are the files index.html loads.
var assetRefs = regexp.MustCompile(`(?:src|href)="(/assets/[^"]+)"`)

func TestIndexAndAssets(t *testing.T) {
	h := Handler()
	res := get(t, h, "GET", "/", nil)
	if res.StatusCode != 200 {
		t.Fatalf("GET /: %d", res.StatusCode)
	}
	index := body(t, res)
	if !strings.Contains(index, `<div id="app">`) {
		t.Fatalf("GET / is not the dashboard's index.html:\n%s", index)
	}
	if got := res.Header.Get("Content-Type"); got != "text/html; charset=utf-8" {
		t.Errorf("index Content-Type %q", got)
	}
	if got := res.Header.Get("Cache-Control"); got != "no-cache" {
		t.Errorf("index Cache-Control %q, want no-cache", got)
	}
	if res.Header.Get("Content-Security-Policy") == "" {
		t.Error("index without a Content-Security-Policy")
	}
	refs := assetRefs.FindAllStringSubmatch(index, -1)
	var js, css bool
	for _, m := range refs {
		ref := m[1]
		js = js || strings.HasSuffix(ref, ".js")
		css = css || strings.HasSuffix(ref, ".css")
		res := get(t, h, "GET", ref, nil)
		if res.StatusCode != 200 {
			t.Errorf("GET %s (from index.html): %d", ref, res.StatusCode)
			continue
		}
		if got := res.Header.Get("Cache-Control"); got != immutableCache {
			t.Errorf("%s Cache-Control %q, want %q", ref, got, immutableCache)
		}
		if len(body(t, res)) == 0 {
			t.Errorf("%s is empty", ref)
		}
		if strings.HasSuffix(ref, ".js") && !strings.HasPrefix(res.Header.Get("Content-Type"), "text/javascript") {
			t.Errorf("%s Content-Type %q", ref, res.Header.Get("Content-Type"))
		}
	}
	if !js || !css {
		t.Errorf("index.html loads no script or no style sheet: %v", refs)
	}
	// Nothing from another origin.
	if regexp.MustCompile(`(?:src|href)="(?:https?:)?//`).MatchString(index) {
		t.Errorf("index.html loads something from another origin:\n%s", index)
	}
}

func TestSPAFallback(t *testing.T) {
	h := Handler()
	index := body(t, get(t, h, "GET", "/", nil))
	for _, p := range []string{"/tasks/0194f1c2-aaaa", "/resources/server/abc", "/new/boot-from-volume", "/login?next=/", "/index.html", "/tasks/x.y"} {
		res := get(t, h, "GET", p, nil)
		if res.StatusCode != 200 {
			t.Errorf("GET %s: %d, want index.html", p, res.StatusCode)
			continue
		}
		if b := body(t, res); b != index {
			t.Errorf("GET %s is not index.html", p)
		}
	}
	for _, p := range []string{"/assets/missing.js", "/assets/", "/missing.css", "/favicon.png"} {
		if res := get(t, h, "GET", p, nil); res.StatusCode != 404 {
			t.Errorf("GET %s: %d, want 404", p, res.StatusCode)
		}
	}
	if res := get(t, h, "GET", "/favicon.svg", nil); res.StatusCode != 200 || res.Header.Get("Content-Type") != "image/svg+xml" {
		t.Errorf("GET /favicon.svg: %d %q", res.StatusCode, res.Header.Get("Content-Type"))
	}
}

func TestMethodsETagGzip(t *testing.T) {
	h := Handler()
	if res := get(t, h, "POST", "/", nil); res.StatusCode != 405 || res.Header.Get("Allow") != "GET, HEAD" {
		t.Errorf("POST /: %d Allow %q", res.StatusCode, res.Header.Get("Allow"))
	}
	res := get(t, h, "HEAD", "/", nil)
	if res.StatusCode != 200 || body(t, res) != "" {
		t.Errorf("HEAD /: %d", res.StatusCode)
	}

	res = get(t, h, "GET", "/", nil)
	etag := res.Header.Get("ETag")
	plain := body(t, res)
	if etag == "" {
		t.Fatal("no ETag")
	}
	if res := get(t, h, "GET", "/", map[string]string{"If-None-Match": etag}); res.StatusCode != 304 {
		t.Errorf("GET / If-None-Match its ETag: %d, want 304", res.StatusCode)
	}

	m := assetRefs.FindStringSubmatch(plain)
	if m == nil {
		t.Fatal("index.html names no asset")
	}
	raw := body(t, get(t, h, "GET", m[1], nil))
	res = get(t, h, "GET", m[1], map[string]string{"Accept-Encoding": "br, gzip"})
	if res.Header.Get("Content-Encoding") != "gzip" || !strings.Contains(res.Header.Get("Vary"), "Accept-Encoding") {
		t.Fatalf("asset with Accept-Encoding gzip: encoding %q vary %q", res.Header.Get("Content-Encoding"), res.Header.Get("Vary"))
	}
	if res.Header.Get("ETag") == etag {
		t.Error("the gzip variant has the plain ETag")
	}
	zr, err := gzip.NewReader(bytes.NewReader([]byte(body(t, res))))
	if err != nil {
		t.Fatal(err)
	}
	unz, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	if string(unz) != raw {
		t.Error("gunzipped asset differs from the plain one")
	}
	if res := get(t, h, "GET", m[1], map[string]string{"Accept-Encoding": "gzip;q=0"}); res.Header.Get("Content-Encoding") != "" {
		t.Error("gzip sent though refused with q=0")
	}
}

func TestAcceptsGzip(t *testing.T) {
	for v, want := range map[string]bool{
		"": false, "gzip": true, "GZIP": true, "deflate, gzip;q=0.5": true, "br": false, "gzip;q=0": false, "gzip; q=0": false, "x-gzip": false,
	} {
		if got := acceptsGzip(v); got != want {
			t.Errorf("acceptsGzip(%q) = %v, want %v", v, got, want)
		}
	}
}
