// Package clientip finds the address of the client behind reverse proxies,
// for a key's IP allow-list and the request log. Every service that
// accepts a user's API key asks it the same way, so an address refused by
// one service is refused by all.
//
// X-Forwarded-For is believed only as far as the proxies that wrote it are
// trusted: starting from the socket peer, each hop that is a trusted proxy
// hands over to the entry it appended (the right-most one not yet read),
// and the first address that is not a trusted proxy is the client. Entries
// to the left of it were written by the client or an untrusted hop and
// are never read, so a client cannot choose its own address by sending the
// header itself.
//
// The resolver takes the peer address and the header value; each HTTP
// stack has a thin adapter (FromRequest for net/http and what wraps it;
// gateway-service reads Hertz's peer with Peer and its header lines
// itself).
package clientip

import (
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strings"
)

// Header is the header trusted proxies append the client address to.
const Header = "X-Forwarded-For"

// Resolver finds client addresses. The zero Resolver trusts no proxy: the
// peer is always the client.
type Resolver struct {
	trusted []netip.Prefix
}

// New returns a resolver believing X-Forwarded-For from peers inside
// trusted.
func New(trusted []netip.Prefix) Resolver {
	return Resolver{trusted: trusted}
}

// Parse returns a resolver for the trusted_proxies setting of a service
// config: CIDRs or single addresses. An entry that parses as neither is an
// error (the config is refused rather than trusting too much or too
// little).
func Parse(trustedProxies []string) (Resolver, error) {
	ps, err := ParsePrefixes(trustedProxies)
	return New(ps), err
}

// ParsePrefixes parses CIDRs or single addresses (a single address is its
// own /32 or /128). IPv4-mapped IPv6 forms are turned into plain IPv4, the
// form client addresses are compared in.
func ParsePrefixes(list []string) ([]netip.Prefix, error) {
	out := make([]netip.Prefix, 0, len(list))
	for _, s := range list {
		p, err := ParsePrefix(s)
		if err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	return out, nil
}

// ParsePrefix parses one CIDR or single address (see ParsePrefixes).
func ParsePrefix(s string) (netip.Prefix, error) {
	s = strings.TrimSpace(s)
	if !strings.Contains(s, "/") {
		a, err := netip.ParseAddr(s)
		if err != nil {
			return netip.Prefix{}, fmt.Errorf("%q is neither a CIDR nor an address", s)
		}
		a = a.Unmap()
		return netip.PrefixFrom(a, a.BitLen()), nil
	}
	p, err := netip.ParsePrefix(s)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("%q is neither a CIDR nor an address", s)
	}
	if a := p.Addr(); a.Is4In6() {
		// ::ffff:a.b.c.d/N is the IPv4 prefix a.b.c.d/(N-96).
		if p.Bits() < 96 {
			return netip.Prefix{}, fmt.Errorf("%q is wider than the IPv4-mapped range", s)
		}
		return netip.PrefixFrom(a.Unmap(), p.Bits()-96).Masked(), nil
	}
	return p.Masked(), nil
}

// Trusts reports whether a is a trusted proxy.
func (r Resolver) Trusts(a netip.Addr) bool {
	for _, p := range r.trusted {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// Resolve returns the client address for a request whose socket peer is
// peer and whose X-Forwarded-For values are forwardedFor (several header
// lines count as one comma-joined list). It is the peer unless the peer is
// a trusted proxy; then the right-most forwarded entry that is not a
// trusted proxy. An unparsable entry stops the walk at the last address
// read, as does running out of entries. The zero Addr is returned only for
// an unparsable peer.
func (r Resolver) Resolve(peer netip.Addr, forwardedFor ...string) netip.Addr {
	peer = peer.Unmap()
	if len(r.trusted) == 0 || !r.Trusts(peer) {
		return peer
	}
	for i := len(forwardedFor) - 1; i >= 0; i-- {
		line := forwardedFor[i]
		for line != "" {
			var entry string
			if j := strings.LastIndexByte(line, ','); j >= 0 {
				entry, line = line[j+1:], line[:j]
			} else {
				entry, line = line, ""
			}
			a, err := netip.ParseAddr(strings.TrimSpace(entry))
			if err != nil {
				return peer
			}
			a = a.Unmap()
			if !r.Trusts(a) {
				return a
			}
			peer = a
		}
	}
	return peer
}

// PeerAddr parses a socket address as net/http gives it ("host:port", or
// a bare host); the zero Addr if it is neither.
func PeerAddr(remote string) netip.Addr {
	host, _, err := net.SplitHostPort(remote)
	if err != nil {
		host = remote
	}
	a, err := netip.ParseAddr(host)
	if err != nil {
		return netip.Addr{}
	}
	return a.Unmap()
}

// Peer is the address of a socket peer as a framework hands it: a
// *net.TCPAddr (Hertz, netpoll) or any net.Addr whose String is
// "host:port". The zero Addr if it is neither.
func Peer(a net.Addr) netip.Addr {
	if ta, ok := a.(*net.TCPAddr); ok && ta != nil {
		p, _ := netip.AddrFromSlice(ta.IP)
		return p.Unmap()
	}
	if a == nil {
		return netip.Addr{}
	}
	return PeerAddr(a.String())
}

// FromRequest is Resolve for a net/http request (Gin and Kratos hand the
// same *http.Request).
func (r Resolver) FromRequest(req *http.Request) netip.Addr {
	return r.Resolve(PeerAddr(req.RemoteAddr), req.Header.Values(Header)...)
}
