package clientip

import (
	"net"
	"net/http/httptest"
	"net/netip"
	"testing"
)

func TestResolve(t *testing.T) {
	proxies, err := Parse([]string{"10.42.0.0/16", "192.0.2.7", "::ffff:172.30.0.0/112"})
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		r    Resolver
		peer string
		xff  []string
		want string
	}{
		{"no proxies trusted: the peer, whatever the header says", Resolver{}, "203.0.113.9", []string{"1.1.1.1"}, "203.0.113.9"},
		{"untrusted peer: header ignored", proxies, "203.0.113.9", []string{"1.1.1.1"}, "203.0.113.9"},
		{"trusted peer, one hop", proxies, "10.42.3.4", []string{"198.51.100.1"}, "198.51.100.1"},
		{"a spoofed left entry is never read", proxies, "10.42.3.4", []string{"1.1.1.1, 198.51.100.1"}, "198.51.100.1"},
		{"chain of trusted proxies", proxies, "10.42.3.4", []string{"1.1.1.1, 198.51.100.1, 192.0.2.7, 10.42.0.9"}, "198.51.100.1"},
		{"several header lines are one list", proxies, "10.42.3.4", []string{"1.1.1.1, 198.51.100.1", "192.0.2.7"}, "198.51.100.1"},
		{"mapped peer and mapped trusted range", proxies, "::ffff:172.30.0.5", []string{"198.51.100.2"}, "198.51.100.2"},
		{"mapped client address is plain IPv4", proxies, "10.42.3.4", []string{"::ffff:198.51.100.3"}, "198.51.100.3"},
		{"trusted peer without header: the peer", proxies, "10.42.3.4", nil, "10.42.3.4"},
		{"garbage stops at the last address read", proxies, "10.42.3.4", []string{"198.51.100.1, nonsense, 192.0.2.7"}, "192.0.2.7"},
		{"every entry trusted: the left-most", proxies, "10.42.3.4", []string{"192.0.2.7, 10.42.0.1"}, "192.0.2.7"},
		{"IPv6 client", proxies, "10.42.3.4", []string{"2001:db8::1"}, "2001:db8::1"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := c.r.Resolve(netip.MustParseAddr(c.peer), c.xff...)
			if got != netip.MustParseAddr(c.want) {
				t.Errorf("Resolve(%s, %q) = %s, want %s", c.peer, c.xff, got, c.want)
			}
		})
	}
}

func TestParseRefusesGarbage(t *testing.T) {
	for _, s := range []string{"nope", "10.0.0.0/33", "::ffff:0:0/90", ""} {
		if _, err := Parse([]string{s}); err == nil {
			t.Errorf("Parse(%q) accepted", s)
		}
	}
	ps, err := ParsePrefixes([]string{"10.1.2.3/8", "::ffff:10.0.0.0/104", "2001:db8::1"})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"10.0.0.0/8", "10.0.0.0/8", "2001:db8::1/128"}
	for i, p := range ps {
		if p.String() != want[i] {
			t.Errorf("prefix %d = %s, want %s", i, p, want[i])
		}
	}
}

func TestFromRequest(t *testing.T) {
	r, _ := Parse([]string{"127.0.0.0/8"})
	req := httptest.NewRequest("GET", "/", nil)
	req.RemoteAddr = "127.0.0.1:5555"
	req.Header.Add(Header, "1.1.1.1, 198.51.100.4")
	if got := r.FromRequest(req); got != netip.MustParseAddr("198.51.100.4") {
		t.Errorf("behind a trusted proxy: %s", got)
	}
	req.RemoteAddr = "[2001:db8::5]:443"
	if got := r.FromRequest(req); got != netip.MustParseAddr("2001:db8::5") {
		t.Errorf("untrusted IPv6 peer: %s", got)
	}
	req.RemoteAddr = "@"
	if got := r.FromRequest(req); got.IsValid() {
		t.Errorf("unparsable peer gave %s", got)
	}
}

func TestPeer(t *testing.T) {
	for _, tt := range []struct {
		name string
		addr net.Addr
		want string
	}{
		{"tcp v4", &net.TCPAddr{IP: net.IPv4(192, 0, 2, 7), Port: 443}, "192.0.2.7"},
		{"tcp v4-mapped v6", &net.TCPAddr{IP: net.ParseIP("::ffff:192.0.2.7"), Port: 443}, "192.0.2.7"},
		{"tcp v6", &net.TCPAddr{IP: net.ParseIP("2001:db8::1"), Port: 443}, "2001:db8::1"},
		{"other net.Addr", &net.UnixAddr{Name: "10.0.0.1:9", Net: "unix"}, "10.0.0.1"},
		{"nil", nil, "invalid IP"},
		{"typed nil", (*net.TCPAddr)(nil), "invalid IP"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got := Peer(tt.addr).String(); got != tt.want {
				t.Fatalf("Peer = %s, want %s", got, tt.want)
			}
		})
	}
}
