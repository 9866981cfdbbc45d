package service_test

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
)

// BenchmarkCreate is the service's own cost of a POST /v1/tasks over
// loopback HTTP (decode, validate, auth from a table, encode), on the
// in-memory backend: the part of the POST latency that is not the
// queue's transaction.
func BenchmarkCreate(b *testing.B) {
	s, _ := fuzzServer(b)
	srv := httptest.NewServer(s)
	defer srv.Close()
	body := []byte(`{"kind":"noop","options":{"timeout":"10m"}}`)
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = 64
	hc := &http.Client{Transport: tr}
	defer tr.CloseIdleConnections()
	b.SetParallelism(32)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			req, _ := http.NewRequest("POST", srv.URL+"/v1/tasks", bytes.NewReader(body))
			req.Header.Set("X-Auth-Token", "tok")
			res, err := hc.Do(req)
			if err != nil {
				b.Error(err)
				return
			}
			_, _ = io.Copy(io.Discard, res.Body)
			res.Body.Close()
			if res.StatusCode != 202 {
				b.Errorf("%d", res.StatusCode)
				return
			}
		}
	})
}
