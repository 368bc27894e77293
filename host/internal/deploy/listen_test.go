package deploy

import (
	"net"
	"strconv"
	"strings"
	"testing"
)

func TestListenHintNamesTheAddressNothingListensOn(t *testing.T) {
	// A real listener on loopback, and a port just closed, as a slot's address would be.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	open := l.Addr().(*net.TCPAddr).Port
	closed, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	shut := closed.Addr().(*net.TCPAddr).Port
	_ = closed.Close()

	if h := listenHint("127.0.0.1", open, "coop", dialTimeout); h != "" {
		t.Errorf("a port that accepts gets no hint: %q", h)
	}
	h := listenHint("127.0.0.1", shut, "coop", dialTimeout)
	want := "; nothing accepts connections on 127.0.0.1:" + strconv.Itoa(shut) + " (the container's address on coop, port " + strconv.Itoa(shut) + " of the release): the app must listen on all interfaces (0.0.0.0 or ::), on that port, not on 127.0.0.1 ("
	if !strings.HasPrefix(h, want) || !strings.Contains(h, "refused") {
		t.Errorf("hint = %q", h)
	}
	if h := listenHint("", shut, "coop", dialTimeout); h != "" {
		t.Errorf("no address, no hint: %q", h)
	}
}
