// Package cpuuse reads the CPU time used so far by this process and by
// the local PostgreSQL server's processes, so that the benchmarks can say
// what a task costs in CPU, and where: on a machine whose cores are all
// busy, throughput is the cores divided by that cost.
package cpuuse

import (
	"bytes"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Use is CPU time (user plus system) used so far.
type Use struct {
	Self time.Duration // this process
	// Postgres is every local process named postgres (its server and
	// backends, those of other clients included); PostgresOK is false
	// where none can be read (not Linux, or PostgreSQL on another host).
	Postgres   time.Duration
	PostgresOK bool
}

// Sub is the CPU used between u0 and u.
func (u Use) Sub(u0 Use) Use {
	return Use{Self: u.Self - u0.Self, Postgres: u.Postgres - u0.Postgres, PostgresOK: u.PostgresOK && u0.PostgresOK}
}

// clockTick is the unit of /proc's CPU times (USER_HZ: 100 on Linux).
const clockTick = 10 * time.Millisecond

// Now reads the CPU used so far.
func Now() Use {
	var u Use
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) == nil {
		u.Self = time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	}
	u.Postgres, u.PostgresOK = postgres()
	return u
}

func postgres() (time.Duration, bool) {
	dirs, err := filepath.Glob("/proc/[0-9]*")
	if err != nil || len(dirs) == 0 {
		return 0, false
	}
	var total time.Duration
	found := false
	for _, d := range dirs {
		comm, err := os.ReadFile(d + "/comm")
		if err != nil || string(bytes.TrimSpace(comm)) != "postgres" {
			continue
		}
		stat, err := os.ReadFile(d + "/stat")
		if err != nil {
			continue
		}
		// The fields after the command's closing parenthesis: utime and
		// stime are the 14th and 15th of the line, the 12th and 13th here.
		i := bytes.LastIndexByte(stat, ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(string(stat[i+1:]))
		if len(f) < 13 {
			continue
		}
		ut, err1 := strconv.ParseInt(f[11], 10, 64)
		st, err2 := strconv.ParseInt(f[12], 10, 64)
		if err1 != nil || err2 != nil {
			continue
		}
		total += time.Duration(ut+st) * clockTick
		found = true
	}
	return total, found
}

// PerItem formats u divided among n items, in milliseconds: this
// process's, PostgreSQL's ("-" when unknown) and their sum.
func (u Use) PerItem(n int) (self, pg, total string) {
	if n <= 0 {
		return "-", "-", "-"
	}
	ms := func(d time.Duration) string {
		return strconv.FormatFloat(float64(d)/float64(time.Millisecond)/float64(n), 'f', 3, 64)
	}
	if !u.PostgresOK {
		return ms(u.Self), "-", "-"
	}
	return ms(u.Self), ms(u.Postgres), ms(u.Self + u.Postgres)
}
