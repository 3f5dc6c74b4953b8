package sqlscan

// The staged tokenizer (tokenizer.go) is ProxySQL's digest ported state for
// state, and it is the definition of the digest text. It is also slow for
// what most queries need: four passes, each byte read through bounds-checked
// helpers, about 0.7 µs for sysbench's 35-byte point select, 2 % of the
// proxy's CPU per query. Most application queries are names, operators,
// numbers and white space. For those, the stages reduce to this:
//
//   - stage 1: white space runs become one ' ' (none at the start); a quoted
//     string becomes '?'; a number literal (a digit after a byte that cannot
//     be part of a name, then name bytes and '.') becomes '?' if ProxySQL's
//     is_digit_string accepts it; everything else is copied, lower-cased with
//     mysql-query_digests_lowercase.
//   - stage 2: a space goes next to '(', ')' and ',', and between '?' and an
//     arithmetic operator; a '+' or '-' that can only be a sign goes.
//   - stages 3 and 4 group "?,?,?" lists and "(…),(…)" groups: they change
//     nothing when neither "?,?" nor "..." is in the text.
//   - the end: trailing spaces and ';' go.
//
// fastDigestText does that in two short passes. A text with a list or a
// group to shorten ("?,?", "...") gets the fast stage 1 and then the
// tokenizer's own stages 2 to 4. It gives up (ok false) on anything else:
// comments ('#', "--", "/*"), and outside strings '?', '\', control and
// non-ASCII bytes; a Dialect other than the zero one; the options that add
// cases (replace_null, no_digits, keep_comment) and queries longer than the
// digest buffer. The caller then
// runs the whole staged tokenizer. That both produce the same text wherever
// the fast path answers is checked by FuzzFastDigest against the tokenizer,
// over inputs drawn mostly from the accepted bytes.

// fastByte marks the bytes the fast path accepts.
var fastByte = func() (t [256]bool) {
	for c := 0; c < 256; c++ {
		t[c] = charClass[c] != 0
	}
	for _, c := range []byte("=<>!.,()*/%+-;@:`&|^~[]{}'\"") {
		t[c] = true
	}
	return t
}()

// fastDigestText returns the digest text of q in dst.Text's buffer, or ok
// false when q needs the staged tokenizer.
func fastDigestText(opts *Options, dst *Digest, q []byte, d Dialect) (text []byte, ok bool) {
	if opts.ReplaceNull || opts.NoDigits || opts.KeepComment || len(q) > opts.MaxQueryLength || d != 0 {
		return nil, false
	}
	if cap(dst.Text) < len(q)+resPad {
		dst.Text = make([]byte, 0, len(q)+resPad)
	}
	out, numAt, ok := fastStage1(opts, q, dst.Text[:0])
	if !ok {
		return nil, false
	}
	// A list or a group to shorten goes to the tokenizer's own stages 2 to
	// 4, from the state its stage 1 would have left.
	if !mayGroup(out) {
		if text, ok := fastStage2(out); ok {
			return text, true
		}
		out, numAt, _ = fastStage1(opts, q, dst.Text[:0]) // mayGroup erred: start over
	}
	return groupStages(opts, dst, q, out, numAt), true
}

// mayGroup reports whether stage 1's text may hold, after stage 2, a
// "?,?" list or a "..." that stages 3 and 4 act on: a comma with a '?' at
// most one byte before it and at most three after it (stage 2 drops spaces
// and signs around commas), or three dots. It errs towards true.
func mayGroup(out []byte) bool {
	for p, c := range out {
		switch c {
		case ',':
			if (at(out, p-1) == '?' || at(out, p-2) == '?') &&
				(at(out, p+1) == '?' || at(out, p+2) == '?' || at(out, p+3) == '?') {
				return true
			}
		case '.':
			if at(out, p+1) == '.' && at(out, p+2) == '.' {
				return true
			}
		}
	}
	return false
}

// fastStage1 appends the stage-1 text of q to out, or says ok false for a
// query the fast path does not take. numAt is the index of the '?' of a
// number that ends the query when the tokenizer's stage 1 would end still
// inside it (its last byte dropped), -1 otherwise.
func fastStage1(opts *Options, q, out []byte) (_ []byte, numAt int, ok bool) {
	lower := opts.Lowercase
	numAt = -1
	// prev is the tokenizer's prevChar: the query byte before this one, '?'
	// after a replaced number; leading white space does not set it.
	prev := byte(0)
	for i := 0; i < len(q); {
		c := q[i]
		switch {
		case !fastByte[c],
			(c == '-' || c == '/') && i+1 < len(q) && (q[i+1] == '-' || q[i+1] == '*'):
			return nil, -1, false
		case c == '\'' || c == '"':
			end, closed := stringEnd(q, i)
			if closed {
				out = append(out, '?')
			}
			// After a string the tokenizer's prevChar is NUL.
			i, prev = end, 0
		case IsSpace(c):
			i++
			if len(out) == 0 {
				continue
			}
			if IsSpace(prev) {
				prev = ' '
				continue
			}
			out = append(out, ' ')
			prev = c
		case isDigitChar(c) && isTokenChar(prev):
			j := i + 1
			for j < len(q) && (isNormalChar(q[j]) || q[j] == '.' ||
				(q[j] == '+' || q[j] == '-') && LowerByte(q[j-1]) == 'e') {
				j++
			}
			start := len(out)
			if j < len(q) {
				// Ended by q[j], handled next with prev the number's last
				// byte or the '?' that replaced it.
				out = appendCopy(out, q[i:j], lower)
				prev = q[j-1]
				if isDigitString(out, 0, start, len(out)) {
					out = append(out[:start], '?')
					prev = '?'
				}
				i = j
				continue
			}
			// The number runs to the end of the query. The tokenizer decides
			// at the last byte, before copying it: the bytes up to it (the
			// first digit alone, if it is the last byte) are a number, and
			// the last byte is dropped if it could be part of a name (else
			// handled on its own after the '?'); or they are not, and the last
			// byte is handled on its own after the rest is copied.
			last := len(q) - 1
			out = appendCopy(out, q[i:last], lower)
			if last == i || isDigitString(out, 0, start, len(out)) {
				out = append(out[:start], '?')
				prev = '?'
				if isNormalChar(q[last]) {
					numAt = start
					i = len(q)
					continue
				}
			} else {
				prev = q[last-1]
			}
			i = last
		default:
			if lower {
				c = LowerByte(c)
			}
			out = append(out, c)
			prev = q[i]
			i++
		}
	}
	return out, numAt, true
}

// fastStage2 turns stage 1's text into the digest text in place, or says
// ok false (the text then is spoilt) when stages 3 and 4 would group
// something in it. It reads the buffer as the tokenizer does: lc and rc
// are the stage-1 bytes around this one; llc, two back, may already have
// been overwritten, and that is part of ProxySQL's rule for signs.
func fastStage2(out []byte) (_ []byte, ok bool) {
	n := 0
	for p := 0; p < len(out); p++ {
		c := out[p]
		if c == ' ' || c == '+' || c == '-' {
			llc, lc, rc := byte('0'), byte('0'), byte(0)
			if p > 1 {
				llc = out[p-2]
			}
			if p > 0 {
				lc = out[p-1]
			}
			if p+1 < len(out) {
				rc = out[p+1]
			}
			if c == ' ' && (lc == '(' || rc == ')' || lc == ',' || rc == ',' ||
				(isArithmeticOp(lc) && rc == '?') || (lc == '?' && isArithmeticOp(rc))) {
				continue
			}
			if c != ' ' && signDropped(llc, lc, rc) {
				continue
			}
		}
		out[n] = c
		n++
		// Stages 3 and 4 would group these.
		if c == '?' && n >= 3 && out[n-2] == ',' && out[n-3] == '?' ||
			c == '.' && n >= 3 && out[n-2] == '.' && out[n-3] == '.' {
			return nil, false
		}
	}
	out = out[:n]

	for len(out) > 1 && (out[len(out)-1] == ' ' || out[len(out)-1] == ';') {
		out = out[:len(out)-1]
	}
	return out, true
}

// groupStages runs the tokenizer's stages 2 to 4 and its end on the
// stage-1 text out of q, set up as its stage 1 leaves them for a query
// within one pass (numAt as fastStage1 reports it).
func groupStages(opts *Options, dst *Digest, q, out []byte, numAt int) []byte {
	res := out[:len(q)+resPad]
	clear(res[len(out):])
	t := tok{
		opts: opts, dMaxLen: len(q), q: q, qPos: len(q), qLen: len(q), res: res,
		resCur: len(out), resPre: len(out), st: stNoMarkFound, cmd: dst.cmd,
		digStart: nilPos, s1NewEndPos: nilPos, s1PreItPos: len(out),
		s2PreItPos: nilPos, s3PreItPos: nilPos, s4PreItPos: nilPos,
	}
	if numAt >= 0 {
		t.st, t.digStart, t.s1NewEndPos = stLiteralNumber, numAt, len(out)
	}
	t.stage2()
	t.stage3()
	t.stage4()
	t.finalStage()
	return digestEnd(res, t.resCur)
}

// stringEnd follows the tokenizer through the string literal that starts
// at q[i] (a quote): the index after its closing quote and true, or
// len(q) and false for a string the query does not close (it leaves no
// trace in the digest). Inside, a doubled quote and a backslash before a
// quote or a backslash escape, except right after the opening quote. The
// tokenizer then takes the byte before the next one to be 'X', so an escaped
// backslash escapes nothing after it.
func stringEnd(q []byte, i int) (end int, closed bool) {
	delim, prev := q[i], q[i]
	for k := i + 1; k < len(q); k++ {
		c := q[k]
		if k > i+1 && (prev == '\\' && (c == '\\' || c == delim) || prev == delim && c == delim) {
			prev = 'X'
			continue
		}
		if c == delim && (k == len(q)-1 || q[k+1] != delim) {
			return k + 1, true
		}
		prev = c
	}
	return len(q), false
}

// signDropped is stage 2's rule for a '+' or '-' between lc and rc (llc
// before lc), for the tokenizer and the fast path: it is a sign (and goes)
// when what precedes it cannot end an operand.
func signDropped(llc, lc, rc byte) bool {
	if lc == ' ' {
		return isNormalChar(llc) || isTokenChar(llc) && llc != '?' && llc != ')' && (rc == '?' || rc == ' ')
	}
	return isTokenChar(lc) && lc != '?' && lc != ')' && (rc == '?' || rc == ' ')
}

func appendCopy(out, s []byte, lower bool) []byte {
	if !lower {
		return append(out, s...)
	}
	for _, c := range s {
		out = append(out, LowerByte(c))
	}
	return out
}
