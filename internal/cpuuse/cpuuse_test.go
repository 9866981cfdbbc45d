package cpuuse

import (
	"testing"
	"time"
)

// Work done shows in this process's CPU time; PostgreSQL's is never
// negative and never moves backwards.
func TestNow(t *testing.T) {
	u0 := Now()
	x := 0
	for deadline := time.Now().Add(30 * time.Second); Now().Sub(u0).Self < 20*time.Millisecond; x++ {
		if time.Now().After(deadline) {
			t.Fatalf("%d rounds of reading the CPU time used %s in 30 s", x, Now().Sub(u0).Self)
		}
	}
	d := Now().Sub(u0)
	if d.PostgresOK && d.Postgres < 0 {
		t.Errorf("PostgreSQL's CPU went backwards: %s", d.Postgres)
	}
}

func TestPerItem(t *testing.T) {
	u := Use{Self: 300 * time.Millisecond, Postgres: 900 * time.Millisecond, PostgresOK: true}
	if s, p, sum := u.PerItem(1000); s != "0.300" || p != "0.900" || sum != "1.200" {
		t.Errorf("PerItem: %s %s %s", s, p, sum)
	}
	u.PostgresOK = false
	if s, p, sum := u.PerItem(1000); s != "0.300" || p != "-" || sum != "-" {
		t.Errorf("without PostgreSQL: %s %s %s", s, p, sum)
	}
	if s, _, _ := u.PerItem(0); s != "-" {
		t.Errorf("no items: %s", s)
	}
}
