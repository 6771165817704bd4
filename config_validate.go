package navercommerce

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
	"unicode"
)

// Validation of the config's fields: client ID, base URL, proxy URL.

func validateClientID(id string) error {
	if len(id) > maxClientIDLength {
		return fmt.Errorf("must be at most %d characters", maxClientIDLength)
	}
	for _, r := range id {
		if r <= ' ' || r >= 0x7f {
			return errors.New("must be printable ASCII without white space")
		}
	}
	return nil
}

// validateBaseURL allows https, and plain http only to this machine (for the emulator).
func validateBaseURL(raw string) (string, error) {
	u, err := url.Parse(strings.TrimSpace(raw))
	if err != nil {
		return "", errors.New("must be a URL such as " + defaultBaseURL)
	}
	switch {
	case u.Host == "" || u.Opaque != "":
		return "", errors.New("must be an absolute URL such as " + defaultBaseURL)
	case u.User != nil:
		return "", errors.New("must not contain user information")
	case u.RawQuery != "" || u.ForceQuery || u.Fragment != "" || strings.ContainsAny(raw, "?#"):
		return "", errors.New("must not have a query or fragment")
	case u.Scheme == "https":
	case u.Scheme == "http" && isLoopback(u.Hostname()):
	case u.Scheme == "http":
		return "", errors.New("must use https (plain http is allowed only to a loopback address, for testing)")
	default:
		return "", fmt.Errorf("must use https, not %q", u.Scheme)
	}
	return normalBaseURL(u), nil
}

// normalBaseURL is u as compared and stored: host in lower case, no default port, no
// trailing slash, so that a cosmetic change is not a credential change that retires every
// token.
func normalBaseURL(u *url.URL) string {
	n := *u
	n.Scheme = strings.ToLower(n.Scheme)
	host, port := strings.ToLower(n.Hostname()), n.Port()
	if (n.Scheme == "https" && port == "443") || (n.Scheme == "http" && port == "80") {
		port = ""
	}
	n.Host = host
	if strings.Contains(host, ":") {
		n.Host = "[" + host + "]"
	}
	if port != "" {
		n.Host += ":" + port
	}
	n.Path = strings.TrimRight(n.Path, "/")
	n.RawPath = ""
	return n.String()
}

// comparableBaseURL normalises a stored base URL (one stored before normalisation existed
// included) for the credentials fingerprint.
func comparableBaseURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return raw
	}
	return normalBaseURL(u)
}

func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func validateProxyURL(raw string) (string, error) {
	raw = strings.TrimSpace(raw)
	if raw == "" {
		return "", nil
	}
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return "", errors.New("must be a URL such as http://proxy.example.com:3128")
	}
	if u.Scheme != "http" && u.Scheme != "https" && u.Scheme != "socks5" {
		return "", fmt.Errorf("must use http, https or socks5, not %q", u.Scheme)
	}
	if strings.ContainsFunc(raw, unicode.IsSpace) {
		return "", errors.New("must not contain white space")
	}
	return u.String(), nil
}

// redactedURL hides a proxy password in reads.
func redactedURL(raw string) string {
	if raw == "" {
		return ""
	}
	u, err := url.Parse(raw)
	if err != nil {
		return ""
	}
	return u.Redacted()
}
