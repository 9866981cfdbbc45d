package cli

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"unsafe"
)

// openPTY opens a new pseudo-terminal. Its size is 0x0 until someone sets
// one, as under some CI runners and 'script' without a terminal.
func openPTY(t *testing.T) (master, tty *os.File) {
	t.Helper()
	m, err := os.OpenFile("/dev/ptmx", os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Skipf("no pseudo-terminals here: %v", err)
	}
	var unlock int32
	if _, _, e := syscall.Syscall(syscall.SYS_IOCTL, m.Fd(), syscall.TIOCSPTLCK, uintptr(unsafe.Pointer(&unlock))); e != 0 {
		t.Fatal(e)
	}
	var n uint32
	if _, _, e := syscall.Syscall(syscall.SYS_IOCTL, m.Fd(), syscall.TIOCGPTN, uintptr(unsafe.Pointer(&n))); e != 0 {
		t.Fatal(e)
	}
	s, err := os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	return m, s
}

// On a terminal of size 0x0 a successful create prints its results
// (mpb would draw nothing at all).
func TestZeroSizeTerminalShowsResults(t *testing.T) {
	master, tty := openPTY(t)
	defer master.Close()
	var screen bytes.Buffer
	copied := make(chan struct{})
	go func() { _, _ = io.Copy(&screen, master); close(copied) }()
	clearCloudEnv(t)
	var stderr bytes.Buffer
	code := Main(t.Context(), cmdArgs([]string{"server", "create", "web", "--count", "3", "--sim"}, createArgs), tty, &stderr)
	_ = tty.Close() // the master then reads EOF (EIO) once drained
	<-copied
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	out := strings.ReplaceAll(screen.String(), "\r\n", "\n")
	for i := 1; i <= 3; i++ {
		if !regexp.MustCompile(fmt.Sprintf(`(?m)^create web-%d: ACTIVE, id [0-9a-f-]{36} \(`, i)).MatchString(out) {
			t.Errorf("no result for web-%d on the terminal:\n%q", i, out)
		}
	}
	if !strings.Contains(out, "create: 3 of 3 succeeded") {
		t.Errorf("no summary on the terminal:\n%q", out)
	}
}
