package trustpolicy

import (
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/imgsign/imgsign/pkg/keyless"
	"github.com/imgsign/imgsign/pkg/keys"
)

// Explain writes the policy in plain words for a reviewer: one paragraph per
// scope, in the order scopes are tried, then what happens to any other
// image.
func (p *Policy) Explain(w io.Writer) {
	var b strings.Builder
	name := p.name
	if name == "" {
		name = "policy"
	}
	switch len(p.Scopes) {
	case 0:
		fmt.Fprintf(&b, "Trust policy %s has no scopes.\n", name)
	case 1:
		fmt.Fprintf(&b, "Trust policy %s has 1 scope. ", name)
	default:
		fmt.Fprintf(&b, "Trust policy %s has %d scopes, listed in the order they are tried: the first that matches an image applies. ", name, len(p.Scopes))
	}
	if len(p.Scopes) > 0 {
		b.WriteString("A scope covers the repository it names and every repository below it")
		if p.hasGlobs() {
			b.WriteString("; in a pattern, * matches within one path segment and ** any number of segments")
		}
		b.WriteString(".\n")
	}
	for _, s := range p.Scopes {
		b.WriteString("\n")
		verb := "Images in "
		if s.pat.literal != len(s.pat.segs) {
			verb = "Images matching "
		}
		b.WriteString(sentence(verb+s.Pattern+" (and below)", true, &s.Requirement))
		fmt.Fprintf(&b, " [line %d]\n", s.Line)
	}
	b.WriteString("\n")
	switch {
	case p.Default == nil:
		b.WriteString("Any other image is rejected: the policy has no default.\n")
	default:
		b.WriteString(sentence("Any other image", false, p.Default))
		fmt.Fprintf(&b, " [default, line %d]\n", p.DefaultLine)
	}
	io.WriteString(w, b.String())
}

func (p *Policy) hasGlobs() bool {
	for _, s := range p.Scopes {
		if s.pat.literal != len(s.pat.segs) {
			return true
		}
	}
	return false
}

// sentence says what subject must satisfy under r.
func sentence(subject string, many bool, r *Requirement) string {
	verb := func(pl, sg string) string {
		if many {
			return pl
		}
		return sg
	}
	switch {
	case r.Reject:
		return subject + " " + verb("are", "is") + " rejected."
	case r.AcceptUnsigned:
		return subject + " " + verb("are", "is") + " accepted without any signature check."
	}
	var need, notNeeded []string
	need = append(need, keysClause(r))
	if len(r.Keys) > 0 && r.TrustedRoot != nil && len(r.TrustedRoot.TimestampingAuthorities()) > 0 {
		need = append(need, "every RFC 3161 timestamp of a key signature verified by a timestamp authority of the trusted root "+r.TrustedRootSource+" (a verified one dates the signature)")
	}
	if t := r.Tlog; t != nil && t.Required {
		need = append(need, "a verified transparency-log entry from "+logsPhrase(t))
	} else {
		s := "a transparency-log entry"
		if t != nil && len(t.Logs) > 0 {
			are := " are"
			if len(t.Logs) == 1 {
				are = " is"
			}
			s += " (" + plural(len(t.Logs), "trusted log") + are + " configured: " + strings.Join(t.Sources, "; ") + ")"
		}
		notNeeded = append(notNeeded, s)
	}
	if len(r.Annotations) > 0 {
		names := make([]string, 0, len(r.Annotations))
		for k := range r.Annotations {
			names = append(names, k)
		}
		sort.Strings(names)
		pairs := make([]string, len(names))
		for i, k := range names {
			pairs[i] = quoteIfNeeded(k) + "=" + quoteIfNeeded(r.Annotations[k])
		}
		if len(pairs) == 1 {
			need = append(need, "the signed annotation "+pairs[0])
		} else {
			need = append(need, "signed annotations "+strings.Join(pairs, ", "))
		}
	}
	for _, a := range r.Attestations {
		s := "an attestation of type " + a.Type
		if a.Conditions != nil {
			conds := a.Conditions.Conditions()
			names := make([]string, len(conds))
			for i, c := range conds {
				names[i] = c.Name
			}
			s += " meeting " + plural(len(conds), "condition") + " (" + strings.Join(names, "; ") + ")"
		}
		need = append(need, s)
	}
	if id := r.Identity; id != nil && id.RequireMatch {
		s := "the signed identity must name the repository"
		if len(id.Remap) > 0 {
			rs := make([]string, len(id.Remap))
			for i, m := range id.Remap {
				rs[i] = m.From + " is checked as " + m.To
			}
			s += " (" + strings.Join(rs, "; ") + ")"
		}
		need = append(need, s)
	} else {
		notNeeded = append(notNeeded, "a signed identity naming the repository (a signature made for another repository is accepted)")
	}
	if r.MaxAge > 0 {
		need = append(need, "signatures no older than "+humanDuration(r.MaxAge)+" (by their verified signing time: a trusted log's, or a trusted TSA's timestamp)")
	}
	out := subject + " " + verb("need", "needs") + " " + strings.Join(need, "; ") + "."
	if len(notNeeded) > 0 {
		out += " Not required: " + strings.Join(notNeeded, "; ") + "."
	}
	return out
}

func keysClause(r *Requirement) string {
	list := make([]string, 0, len(r.Keys)+len(r.Identities))
	for _, k := range r.Keys {
		list = append(list, keyPhrase(k))
	}
	for _, id := range r.Identities {
		list = append(list, identityPhrase(r, id.Identity))
	}
	n, t := len(list), r.Threshold
	if len(r.Identities) > 0 {
		noun := "signers"
		switch {
		case n == 1:
			return "a signature by " + list[0]
		case t <= 1:
			return fmt.Sprintf("a signature by any one of these %d %s: %s", n, noun, strings.Join(list, "; "))
		case t == n:
			return fmt.Sprintf("signatures by all %d of these %s: %s", n, noun, strings.Join(list, "; "))
		default:
			return fmt.Sprintf("signatures by %d different ones of these %d %s: %s", t, n, noun, strings.Join(list, "; "))
		}
	}
	switch {
	case n == 1:
		return "a signature by the key " + list[0]
	case t <= 1:
		return fmt.Sprintf("a signature by any one of these %d keys: %s", n, strings.Join(list, ", "))
	case t == n:
		return fmt.Sprintf("signatures by all %d of these keys: %s", n, strings.Join(list, ", "))
	default:
		return fmt.Sprintf("signatures by %d of these %d keys: %s", t, n, strings.Join(list, ", "))
	}
}

// identityPhrase says in plain words who a certificate identity admits.
func identityPhrase(r *Requirement, id keyless.Identity) string {
	out := "a certificate (keyless) signer whose identity is " + fmt.Sprintf("%q", id.Subject)
	if id.Subject == "" {
		out = fmt.Sprintf("a certificate (keyless) signer whose whole identity matches the regular expression %q", id.SubjectRegexp)
	}
	if id.Issuer != "" {
		out += fmt.Sprintf(", vouched for by the OIDC issuer %q", id.Issuer)
	} else {
		out += fmt.Sprintf(", vouched for by an OIDC issuer whose whole URL matches %q", id.IssuerRegexp)
	}
	for _, e := range []struct{ what, v string }{
		{"workflow repository", id.GithubWorkflowRepository}, {"workflow ref", id.GithubWorkflowRef},
		{"workflow trigger", id.GithubWorkflowTrigger}, {"workflow name", id.GithubWorkflowName}, {"workflow commit", id.GithubWorkflowSHA},
	} {
		if e.v != "" {
			out += fmt.Sprintf(", from the GitHub Actions %s %q", e.what, e.v)
		}
	}
	out += windowPhrase(id.NotBefore, id.NotAfter)
	root := "the default Sigstore trusted root"
	if r.TrustedRootSource != "" {
		root = "the trusted root " + r.TrustedRootSource
	}
	return out + ", with a certificate issued by a CA of " + root + " and valid at the verified signing time"
}

func keyPhrase(k Key) string {
	alg := ""
	if info, err := keys.Describe(k.Public); err == nil {
		alg = info.Algorithm
		if info.Curve != "" {
			alg += " " + info.Curve
		} else if info.Algorithm == "rsa" {
			alg += " " + strconv.Itoa(info.Bits)
		}
		alg += ", "
	}
	return fmt.Sprintf("%s (%sID %s)%s", k.Source, alg, k.ID, windowPhrase(k.NotBefore, k.NotAfter))
}

// windowPhrase says when a key or identity counts, or "".
func windowPhrase(nb, na time.Time) string {
	switch {
	case !nb.IsZero() && !na.IsZero():
		return fmt.Sprintf(", counted only for signatures whose verified signing time is between %s and %s", nb.UTC().Format(time.RFC3339), na.UTC().Format(time.RFC3339))
	case !nb.IsZero():
		return fmt.Sprintf(", counted only for signatures whose verified signing time is from %s on", nb.UTC().Format(time.RFC3339))
	case !na.IsZero():
		return fmt.Sprintf(", counted only for signatures whose verified signing time is up to %s", na.UTC().Format(time.RFC3339))
	}
	return ""
}

func logsPhrase(t *TlogRequirement) string {
	s := "one of " + plural(len(t.Logs), "trusted log")
	if len(t.Logs) == 1 {
		s = "the trusted log"
	}
	if len(t.Sources) > 0 {
		s += " (" + strings.Join(t.Sources, "; ") + ")"
	}
	return s
}

func plural(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return strconv.Itoa(n) + " " + what + "s"
}

// humanDuration writes d in days, hours or minutes when it is a whole
// number of them.
func humanDuration(d time.Duration) string {
	switch {
	case d%(24*time.Hour) == 0:
		return plural(int(d/(24*time.Hour)), "day")
	case d%time.Hour == 0:
		return plural(int(d/time.Hour), "hour")
	case d%time.Minute == 0:
		return plural(int(d/time.Minute), "minute")
	}
	return d.String()
}

// quoteIfNeeded quotes s unless it is a plain word.
func quoteIfNeeded(s string) string {
	if s == "" {
		return `""`
	}
	for _, c := range s {
		plain := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.ContainsRune("._-/:@+", c)
		if !plain {
			return strconv.Quote(s)
		}
	}
	return s
}
