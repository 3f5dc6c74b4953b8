package sqlscan

import (
	"bytes"
	"math"
)

// The tokenizer below is a faithful port of ProxySQL's staged digest
// (lib/c_tokenizer.cpp, mysql_query_digest_and_first_comment with its
// options struct). ProxySQL's output is defined by that code, quirks
// included, and users match rules against it (match_digest) and key rules on
// its hash (digest), so it is ported state for state rather than redesigned.
// Pointers into the query and the result buffer become indexes; NULL becomes
// nilPos, chosen so that pointer arithmetic on it never lands on a real
// index.

const (
	nilPos                = math.MinInt32
	firstCommentMaxLength = 1024 // FIRST_COMMENT_MAX_LENGTH
	resPad                = 16   // bytes after the digest buffer the C code may read
)

type pstate uint8

const (
	stNoMarkFound pstate = iota
	stCmntType1
	stCmntType2
	stCmntType3
	stLiteralString
	stLiteralNumber
	stReplaceNull
)

const (
	ccNormal = 1 << iota // [A-Za-z0-9$_]: can be part of a name
	ccSpace              // ' ', \t, \n, \r
)

// charClass is a lookup table for the tokenizer's hottest predicates.
var charClass = func() (t [256]uint8) {
	for c := 0; c < 256; c++ {
		if (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '$' || c == '_' {
			t[c] |= ccNormal
		}
		if c == ' ' || c == '\t' || c == '\n' || c == '\r' {
			t[c] |= ccSpace
		}
	}
	return t
}()

func isNormalChar(c byte) bool { return charClass[c]&ccNormal != 0 }

func isTokenChar(c byte) bool { return charClass[c]&ccNormal == 0 }

// IsSpace reports whether c is white space to the tokenizer.
func IsSpace(c byte) bool { return charClass[c]&ccSpace != 0 }

func isDigitChar(c byte) bool { return c >= '0' && c <= '9' }

func isHexChar(c byte) bool {
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F')
}

func isArithmeticOp(c byte) bool { return c == '+' || c == '-' || c == '*' || c == '/' || c == '%' }

// LowerByte lower-cases an ASCII letter.
func LowerByte(c byte) byte {
	if c >= 'A' && c <= 'Z' {
		return c + ('a' - 'A')
	}
	return c
}

// LowerASCII folds the ASCII letters of s and leaves every other byte as
// it is (strings.ToLower would turn each invalid byte into a 3-byte
// U+FFFD, and two different names into one).
func LowerASCII(s string) string {
	for i := 0; i < len(s); i++ {
		if 'A' <= s[i] && s[i] <= 'Z' {
			b := []byte(s)
			for j := i; j < len(b); j++ {
				b[j] = LowerByte(b[j])
			}
			return string(b)
		}
	}
	return s
}

// tok is shared_st plus the per-stage states of the C implementation.
type tok struct {
	opts *Options

	// d is how the server reads the query: where a string ends depends on
	// it (ProxySQL reads every query in the zero Dialect).
	d Dialect

	// shared_st
	glCOffset    int
	dMaxLen      int
	q            []byte
	qPos         int // q_cur_pos; the C pointer q always equals q + q_cur_pos
	qLen         int
	res          []byte
	resInit      int
	resItInit    int
	resCur       int
	resPre       int
	st           pstate
	prevChar     byte
	keepPrevChar bool
	copyNextChar bool

	// stage_1_st
	c1IsCmd      bool
	c1CurCmdLen  int
	c1FstCmntEnd bool
	c1FstCmntLen int
	fstCmnt      []byte // nil until the first comment starts (ProxySQL mallocs lazily)
	cmd          []byte
	strDelimNum  int
	strDelimChar byte
	strQStart    int
	digFirst     bool
	digStart     int
	s1PreItPos   int
	s1NewEndPos  int

	s2PreItPos, s2COffset int
	s3PreItPos, s3COffset int
	s4PreItPos, s4COffset int
}

// qAt reads the query, returning 0 past its end as the C code's reads of a
// NUL-terminated copy would.
func (t *tok) qAt(i int) byte {
	if i >= 0 && i < t.qLen {
		return t.q[i]
	}
	return 0
}

// rAt reads the result buffer; out-of-range reads (which the C code only
// performs on paths it cannot reach with a valid pointer) yield 0.
func (t *tok) rAt(i int) byte { return at(t.res, i) }

// at reads b[i], or 0 out of range.
func at(b []byte, i int) byte {
	if i >= 0 && i < len(b) {
		return b[i]
	}
	return 0
}

func (t *tok) rSet(i int, c byte) {
	if i >= 0 && i < len(t.res) {
		t.res[i] = c
	}
}

func digestText(opts *Options, dst *Digest, q []byte, d Dialect) []byte {
	return digestTextStages(opts, dst, q, d, 4)
}

// digestTextStages runs the tokenizer. stages < 4 reproduces ProxySQL's test
// helpers mysql_query_digest_first_stage (1) and _second_stage (2): a single
// pass of the first stages followed by the final cleanup.
func digestTextStages(opts *Options, dst *Digest, q []byte, d Dialect, stages int) []byte {
	qLen := len(q)
	dMax := qLen
	if dMax > opts.MaxQueryLength {
		dMax = opts.MaxQueryLength
	}
	need := dMax + resPad
	res := dst.Text
	if cap(res) < need {
		res = make([]byte, need)
	} else {
		res = res[:need]
		clear(res)
	}

	t := tok{
		opts:        opts,
		d:           d,
		dMaxLen:     dMax,
		q:           q,
		qLen:        qLen,
		res:         res,
		digFirst:    true,
		digStart:    nilPos,
		strQStart:   0,
		s1NewEndPos: nilPos,
		s1PreItPos:  nilPos,
		s2PreItPos:  nilPos,
		s3PreItPos:  nilPos,
		s4PreItPos:  nilPos,
		cmd:         dst.cmd,
	}
	// Reuse the comment buffer of the previous call; ProxySQL allocates it
	// when the first comment starts, which t.fstCmnt != nil mirrors.
	fc := dst.FirstComment[:0]

	// Each productive iteration consumes at least one query byte, so this
	// bound is never reached by input ProxySQL itself terminates on; it only
	// guards against a porting slip turning into a hang.
	for it := 0; it <= qLen+1; it++ {
		t.stage1(&fc)
		if stages < 4 {
			if stages >= 2 {
				t.stage2()
			}
			break
		}
		t.stage2()
		t.stage3()
		t.stage4()
		t.glCOffset = t.s1PreItPos - t.resCur
		if t.qPos >= t.qLen || t.dMaxLen <= t.resCur-t.resInit || t.glCOffset == 0 {
			break
		}
		t.resItInit = t.resCur
		t.resPre = t.resCur
	}
	t.finalStage()

	dst.cmd = t.cmd
	if t.fstCmnt != nil {
		dst.FirstComment = t.fstCmnt
	} else {
		dst.FirstComment = fc[:0]
	}

	return digestEnd(res, t.resCur)
}

// digestEnd is the digest text in res once the stages are done and end is
// their last resCur. The C result is a NUL-terminated string: whatever
// follows the first NUL (written by final_stage, or copied from a NUL in
// the query) is not part of the digest.
func digestEnd(res []byte, end int) []byte {
	end = max(min(end, len(res)), 0)
	if i := bytes.IndexByte(res[:end], 0); i >= 0 {
		end = i
	}
	return res[:end]
}

func (t *tok) getNextSt() pstate {
	prev := t.prevChar
	c := t.qAt(t.qPos)
	switch {
	case t.qPos < t.qLen-2 && c == '/' && t.qAt(t.qPos+1) == '*':
		return stCmntType1
	case c == '#':
		return stCmntType2
	case t.qPos < t.qLen-2 && c == '-' && t.qAt(t.qPos+1) == '-' && dashComment(t.qAt(t.qPos+2)):
		if prev != '-' || t.qPos == 0 {
			return stCmntType3
		}
		return stNoMarkFound
	case c == '\'' || c == '"':
		return stLiteralString
	case isTokenChar(prev) && isDigitChar(c):
		return stLiteralNumber
	case isTokenChar(t.prevChar) && (c == 'n' || c == 'N') && t.opts.ReplaceNull:
		return stReplaceNull
	}
	return stNoMarkFound
}

func (t *tok) incProcPos() {
	if !t.keepPrevChar {
		t.prevChar = t.qAt(t.qPos)
	} else {
		t.keepPrevChar = false
	}
	t.qPos++
}

func (t *tok) copyNext() {
	c := t.qAt(t.qPos)
	if IsSpace(c) {
		c = ' '
	} else if t.opts.Lowercase {
		c = LowerByte(c)
	}
	t.rSet(t.resCur, c)
	t.resCur++
	t.incProcPos()
}

func (t *tok) cmdPut(c byte) {
	if t.cmd == nil {
		t.cmd = make([]byte, firstCommentMaxLength)
	}
	t.cmd[t.c1CurCmdLen] = c
	t.c1CurCmdLen++
}

func (t *tok) processCmntType1(fc *[]byte) pstate {
	next := stCmntType1
	resFinal := t.resInit + t.dMaxLen

	if t.qPos <= t.qLen-2 && t.qAt(t.qPos) == '/' && t.qAt(t.qPos+1) == '*' {
		t.c1CurCmdLen = 0
		adv := 2
		if t.qPos != t.qLen-2 && t.qAt(t.qPos+2) == '!' {
			t.c1IsCmd = true
			adv = 3
		} else if t.qPos < t.qLen-3 && t.qAt(t.qPos+2) == 'M' && t.qAt(t.qPos+3) == '!' {
			// MariaDB's /*M! … */ holds SQL MariaDB runs: its text is
			// kept as /*! … */'s is, so that rules and the firewall see
			// it (ProxySQL takes it for a comment and drops it).
			t.c1IsCmd = true
			adv = 4
		}
		if t.opts.KeepComment {
			t.cmdPut(t.qAt(t.qPos))
			t.cmdPut(t.qAt(t.qPos + 1))
		}
		t.qPos += adv
		if t.qPos >= t.qLen-1 {
			return stNoMarkFound
		}
	}

	cur := t.qAt(t.qPos)
	if t.c1IsCmd || t.opts.KeepComment {
		if t.c1CurCmdLen < firstCommentMaxLength-1 {
			t.cmdPut(cur)
		}
	}

	if !t.c1FstCmntEnd {
		if t.c1FstCmntLen < firstCommentMaxLength-1 {
			if t.fstCmnt == nil {
				t.fstCmnt = (*fc)[:0]
			}
			c := cur
			if IsSpace(c) {
				c = ' '
			}
			t.fstCmnt = append(t.fstCmnt[:t.c1FstCmntLen], c)
			t.c1FstCmntLen++
		}
		if t.prevChar == '*' && cur == '/' {
			if t.c1FstCmntLen >= 2 {
				t.c1FstCmntLen -= 2
			}
			t.fstCmnt = t.fstCmnt[:t.c1FstCmntLen]
			t.c1FstCmntEnd = true
		}
	}

	if t.prevChar == '*' && cur == '/' {
		if t.c1IsCmd || t.opts.KeepComment {
			if t.c1CurCmdLen >= 2 {
				if !t.opts.KeepComment {
					t.c1CurCmdLen -= 2
				}
				annot := 0
				end := false
				for !end && annot < t.c1CurCmdLen {
					ch := t.cmd[annot]
					if ch == '/' || ch == '*' || ch == '!' || ch == ' ' || isDigitChar(ch) {
						annot++
					} else {
						end = true
					}
				}
				if end {
					free := resFinal - t.resCur
					size := t.c1CurCmdLen - annot
					src := t.cmd[annot:t.c1CurCmdLen]
					if t.opts.KeepComment {
						size = t.c1CurCmdLen
						src = t.cmd[:t.c1CurCmdLen]
					}
					n := size
					if free < n {
						n = free
					}
					if n > 0 {
						copy(t.res[t.resCur:], src[:n])
						t.resCur += n
					}
					if t.rAt(t.resCur-1) != ' ' && t.resCur != resFinal {
						t.rSet(t.resCur, ' ')
						t.resCur++
					}
				}
			}
			t.c1IsCmd = false
			t.c1CurCmdLen = 0
		}
		if t.resInit != t.resCur && t.resCur != resFinal && t.rAt(t.resCur-1) != ' ' {
			t.rSet(t.resCur, ' ')
			t.resCur++
		}
		t.prevChar = ' '
		next = stNoMarkFound
		t.c1IsCmd = false
		t.qPos++
	}
	return next
}

func (t *tok) processCmntType2() pstate {
	next := stCmntType2
	if t.qAt(t.qPos) == '#' && t.qPos <= t.qLen-2 {
		t.qPos++
	}
	c := t.qAt(t.qPos)
	if c == '\n' || t.qPos >= t.qLen-1 { // the server ends it at a newline only
		next = stNoMarkFound
		t.prevChar = ' '
		t.qPos++
	}
	return next
}

func (t *tok) processCmntType3() pstate {
	next := stCmntType3
	if t.qPos <= t.qLen-4 && t.qAt(t.qPos) == '-' && t.qAt(t.qPos+1) == '-' && dashComment(t.qAt(t.qPos+2)) {
		t.qPos += 3
	}
	c := t.qAt(t.qPos)
	if c == '\n' || t.qPos >= t.qLen-1 { // the server ends it at a newline only
		next = stNoMarkFound
		t.prevChar = ' '
		t.qPos++
	}
	return next
}

func (t *tok) processLiteralString() pstate {
	next := stLiteralString
	if t.strDelimNum == 0 {
		t.strQStart = t.qPos
		t.strDelimChar = t.qAt(t.qPos)
		t.strDelimNum = 1
		return next
	}
	c := t.qAt(t.qPos)
	if c >= 0x80 && t.d.charLen(t.q, t.qPos) == 2 {
		// A multibyte character: its second byte is neither an escape
		// nor a quote.
		t.qPos++
		t.keepPrevChar = true
		t.prevChar = 'X'
		return next
	}
	if t.qPos > t.strQStart+1 {
		esc := t.d.escapes(t.strDelimChar)
		if (esc && t.prevChar == '\\' && c == '\\') ||
			(esc && t.prevChar == '\\' && c == t.strDelimChar) ||
			(t.prevChar == t.strDelimChar && c == t.strDelimChar) {
			t.keepPrevChar = true
			t.prevChar = 'X'
			return next
		}
	}
	if c == t.strDelimChar && (t.qLen == t.qPos+1 || t.qAt(t.qPos+1) != t.strDelimChar) {
		t.resCur = t.resPre
		t.rSet(t.resCur, '?')
		t.resCur++
		t.prevChar = '?'
		if t.qLen == t.qPos+1 {
			t.copyNextChar = false
			return next
		}
		t.strDelimChar = 0
		t.strDelimNum = 0
		t.strQStart = 0
		// ProxySQL assigns the already-cleared delimiter, so the char seen
		// "before" whatever follows a string is NUL (a token char).
		t.prevChar = t.strDelimChar
		t.qPos++
		next = stNoMarkFound
	}
	return next
}

func (t *tok) isDigitString2(f, to int) bool { return isDigitString(t.res, t.resInit, f, to) }

// isDigitString is ProxySQL's is_digit_string over res[f:to], where init is
// the start of the digest in res: whether the copied bytes of a number
// literal (digits, a '.', an exponent, 0x and hex digits) are a number, so
// that they become '?'. f == to looks at the one byte at f.
func isDigitString(res []byte, init, f, to int) bool {
	if f == to {
		return isDigitChar(at(res, f))
	}
	if f > to {
		return false
	}
	isHex := false
	for i := 0; f < to; f, i = f+1, i+1 {
		c := at(res, f)
		var isFloat bool
		if f > init {
			p := LowerByte(at(res, f-1))
			isFloat = c == '.' || LowerByte(c) == 'e' || (p == 'e' && (c == '+' || c == '-'))
		} else {
			isFloat = c == '.' || LowerByte(c) == 'e'
		}
		switch {
		case f > init && i == 1 && at(res, f-1) == '0' && (c == 'x' || c == 'X'):
			isHex = true
		case !isHex && !isDigitChar(c) && !isFloat:
			return false
		case isHex && !isHexChar(c):
			return false
		}
	}
	return true
}

func (t *tok) processLiteralDigit() pstate {
	next := stLiteralNumber
	c := t.qAt(t.qPos)
	if t.digFirst && isTokenChar(t.prevChar) && isDigitChar(c) {
		t.digStart = t.resPre
		t.rSet(t.resCur, c)
		t.digFirst = false
	}
	isFloat := c == '.' || (LowerByte(t.prevChar) == 'e' && (c == '-' || c == '+'))
	if (isTokenChar(c) && !isFloat) || t.qLen == t.qPos+1 {
		if t.digStart != nilPos && t.isDigitString2(t.digStart, t.resCur) {
			t.resCur = t.digStart
			t.rSet(t.resCur, '?')
			t.resCur++
			t.prevChar = '?'
			if !isTokenChar(c) && t.qLen == t.qPos+1 {
				t.copyNextChar = false
				return next
			}
		}
		t.digStart = nilPos
		t.digFirst = false
		next = stNoMarkFound
	}
	return next
}

func (t *tok) processReplaceNull() pstate {
	rem := t.qLen - t.qPos
	found := false
	isNull := func() bool {
		q := t.qPos
		return (t.qAt(q) == 'N' || t.qAt(q) == 'n') &&
			(t.qAt(q+1) == 'U' || t.qAt(q+1) == 'u') &&
			(t.qAt(q+2) == 'L' || t.qAt(q+2) == 'l') &&
			(t.qAt(q+3) == 'L' || t.qAt(q+3) == 'l')
	}
	if rem > 4 {
		found = isNull() && isTokenChar(t.qAt(t.qPos+4))
	} else if rem == 4 {
		found = isNull()
	}
	if found {
		t.resCur = t.resPre
		t.rSet(t.resCur, '?')
		t.resCur++
		t.prevChar = '?'
		t.qPos += 4
	} else {
		t.copyNext()
	}
	return stNoMarkFound
}

func (t *tok) stageDigestEnd() int {
	if t.st == stLiteralNumber && t.digStart != nilPos {
		return t.digStart - 1
	}
	return t.resCur - 1
}

func (t *tok) setStageNextStartPos(digestEnd, nextStart int) {
	initialIt := t.resInit == t.resItInit
	valid := nextStart >= t.resInit && nextStart < digestEnd
	if !initialIt && valid {
		t.resCur = nextStart
		t.resPre = nextStart
	} else {
		t.resCur = t.resInit
		t.resPre = t.resInit
	}
}

func (t *tok) endCompressionStageIt(digestEnd int, preItPos *int) {
	if t.digStart != nilPos && digestEnd == t.digStart-1 && t.s1NewEndPos != nilPos {
		f := t.digStart
		t.digStart = t.resPre
		*preItPos = t.digStart
		for f < t.s1NewEndPos {
			t.rSet(t.resPre, t.rAt(f))
			t.resPre++
			f++
			t.resCur++
		}
		t.rSet(t.resPre, 0)
		t.s1NewEndPos = t.resPre
	} else {
		t.rSet(t.resPre, 0)
		*preItPos = t.resPre
	}
}

func (t *tok) stage1(fc *[]byte) {
	resFinal := t.resInit + t.dMaxLen - 1
	cur := t.st

	if t.s1NewEndPos != nilPos {
		t.resCur = t.s1NewEndPos
		t.resPre = t.s1NewEndPos
	}
	if t.resInit != t.resItInit {
		t.prevChar = t.rAt(t.resPre - 1)
	}

	for t.resCur <= resFinal && t.qPos < t.qLen {
		if cur == stNoMarkFound {
			t.resPre = t.resCur
			cur = t.getNextSt()
			if cur != stNoMarkFound {
				continue
			}
			c := t.qAt(t.qPos)
			if t.resCur == t.resInit && IsSpace(c) {
				t.qPos++
				continue
			}
			if IsSpace(t.prevChar) && IsSpace(c) {
				if !IsSpace(t.rAt(t.resCur - 1)) {
					// ProxySQL steps over the slot it assumes holds the first
					// space; after a '#' or '--' comment nothing was written
					// there, so write the space it expects instead of leaving
					// stale bytes in the digest.
					t.rSet(t.resCur, ' ')
					t.resCur++
				}
				t.prevChar = ' '
				t.rSet(t.resCur, ' ')
				t.qPos++
				continue
			}
			t.copyNext()
			continue
		}

		switch cur {
		case stCmntType1:
			t.copyNextChar = false
			cur = t.processCmntType1(fc)
			if cur == stNoMarkFound {
				t.copyNextChar = true
				continue
			}
		case stCmntType2:
			t.copyNextChar = false
			cur = t.processCmntType2()
			if cur == stNoMarkFound {
				t.copyNextChar = true
				continue
			}
		case stCmntType3:
			t.copyNextChar = false
			cur = t.processCmntType3()
			if cur == stNoMarkFound {
				t.copyNextChar = true
				continue
			}
		case stLiteralString:
			t.copyNextChar = false
			cur = t.processLiteralString()
			if cur == stNoMarkFound {
				t.copyNextChar = true
				continue
			}
		case stLiteralNumber:
			t.copyNextChar = true
			cur = t.processLiteralDigit()
			if cur == stNoMarkFound {
				t.digFirst = true
				t.copyNextChar = true
				continue
			}
		case stReplaceNull:
			cur = t.processReplaceNull()
			if cur == stNoMarkFound {
				t.copyNextChar = true
				continue
			}
		}
		if t.copyNextChar {
			t.copyNext()
		} else {
			t.incProcPos()
		}
	}

	t.rSet(t.resCur, 0)
	t.st = cur
	t.s1PreItPos = t.resCur
	if t.st == stLiteralNumber {
		t.s1NewEndPos = t.resCur
	} else {
		t.s1NewEndPos = nilPos
	}
}

func (t *tok) copyPre() {
	t.rSet(t.resPre, t.rAt(t.resCur))
	t.resPre++
	t.resCur++
}

func (t *tok) stage2() {
	digestEnd := t.stageDigestEnd()
	nextStart := t.s2PreItPos - (t.glCOffset - t.s2COffset) - (5 + 1)
	t.setStageNextStartPos(digestEnd, nextStart)

	for t.resCur <= digestEnd {
		c := t.rAt(t.resCur)
		switch {
		case c == ' ':
			lc := byte('0')
			if t.resCur > t.resInit {
				lc = t.rAt(t.resCur - 1)
			}
			rc := t.rAt(t.resCur + 1)
			switch {
			case lc == '(' || rc == ')':
				t.resCur++
			case (isArithmeticOp(lc) && rc == '?') || lc == ',' || rc == ',':
				llc := byte('0')
				if t.resCur > t.resInit+1 {
					llc = t.rAt(t.resCur - 2)
				}
				if t.opts.KeepComment && llc == '*' && lc == '/' {
					t.copyPre()
				} else {
					t.resCur++
				}
			case isArithmeticOp(rc) && lc == '?' && isTokenChar(lc):
				t.resCur++
			default:
				t.copyPre()
			}
		case c == '+' || c == '-':
			llc := byte('0')
			if t.resCur > t.resInit+1 {
				llc = t.rAt(t.resCur - 2)
			}
			lc := byte('0')
			if t.resCur > t.resInit {
				lc = t.rAt(t.resCur - 1)
			}
			if signDropped(llc, lc, t.rAt(t.resCur+1)) {
				t.resCur++
			} else {
				t.copyPre()
			}
		case t.opts.NoDigits && isDigitChar(c):
			if t.resPre > t.resInit && t.rAt(t.resPre-1) != '?' {
				t.rSet(t.resPre, '?')
				t.resPre++
			}
			t.resCur++
		default:
			t.copyPre()
		}
	}

	t.s2COffset = max(digestEnd-t.resPre+1, 0)
	t.endCompressionStageIt(digestEnd, &t.s2PreItPos)
	t.resCur = t.resPre
}

func (t *tok) stage3() {
	gl := t.opts.GroupingLimit
	if gl == 0 {
		return
	}
	digestEnd := t.stageDigestEnd()
	minGroupSize := gl*2 + 7
	nextStart := t.s3PreItPos - (t.glCOffset - t.s3COffset) - (minGroupSize + 1)
	t.setStageNextStartPos(digestEnd, nextStart)

	groupCandidate := false
loop:
	for t.resCur <= digestEnd {
		if groupCandidate && t.resPre-t.resInit > 4 {
			foundExpPack := t.rAt(t.resPre-1) == '.' && t.rAt(t.resPre-2) == '.' &&
				t.rAt(t.resPre-3) == '.' && t.rAt(t.resPre-4) == ','
			if foundExpPack && digestEnd-t.resCur >= 1 {
				n := t.resCur
				isLast := false
				if t.rAt(n) == ',' {
					n++
				}
				for n < digestEnd {
					if t.rAt(n) == '?' && t.rAt(n+1) == ',' {
						n += 2
					} else {
						if t.rAt(n) == '?' && t.rAt(n+1) == ')' {
							n++
							isLast = true
						}
						break
					}
				}
				if n > t.resCur+1 || isLast {
					t.resCur = n
				}
				if t.digStart != nilPos {
					if n >= digestEnd && isDigitChar(t.rAt(n)) {
						break loop
					}
				}
			}
		}

		curChar := t.resCur
		patternFits := t.resCur < digestEnd-gl*2
		if groupCandidate && patternFits {
			isMin := t.rAt(curChar) == '?' && t.rAt(curChar+1) == ',' && t.rAt(curChar+2) == '?' &&
				(t.rAt(curChar+3) == ',' || t.rAt(curChar+3) == ')')
			if !isArithmeticOp(t.rAt(curChar-1)) && isMin {
				patternLen := 0
				broken := 0
				p := t.resCur
				for p < digestEnd && broken == 0 {
					if t.rAt(p) == '?' && t.rAt(p+1) == ',' {
						p += 2
						patternLen++
					} else if t.rAt(p+1) == ')' {
						broken = 2
					} else {
						broken = 1
					}
				}
				fLen := patternLen * 2
				if broken == 2 {
					fLen++
				}
				if fLen >= gl*2+3 {
					for i := 0; i < patternLen; i++ {
						if i < gl {
							t.rSet(t.resPre, '?')
							t.rSet(t.resPre+1, ',')
							t.resPre += 2
						} else if i == gl {
							t.rSet(t.resPre, '.')
							t.rSet(t.resPre+1, '.')
							t.rSet(t.resPre+2, '.')
							t.resPre += 3
						}
					}
					if broken == 2 {
						t.resCur = p + 1
					} else {
						t.resCur = p - 1
					}
				} else {
					for i := 0; i < patternLen; i++ {
						t.rSet(t.resPre, '?')
						t.rSet(t.resPre+1, ',')
						t.resPre += 2
					}
					t.resCur = p
				}
			} else {
				t.copyPre()
			}
		} else {
			t.copyPre()
		}

		switch t.rAt(curChar) {
		case '(':
			groupCandidate = true
		case ')':
			groupCandidate = false
		}
	}

	t.s3COffset = max(digestEnd-(t.resPre-1), 0)
	t.endCompressionStageIt(digestEnd, &t.s3PreItPos)
	t.resCur = t.resPre
}

func (t *tok) isGroupPattern(pos int) bool {
	gl := t.opts.GroupingLimit
	size := 1 + gl*2 + 3 + 1
	for i := 0; i < size; i++ {
		c := t.rAt(pos + i)
		switch {
		case i == 0:
			if c != '(' {
				return false
			}
		case i == size-1:
			if c != ')' {
				return false
			}
		case i%2 == 1:
			if i <= gl*2 {
				if c != '?' {
					return false
				}
			} else if c != '.' {
				return false
			}
		default:
			if i <= gl*2 {
				if c != ',' {
					return false
				}
			} else if c != '.' {
				return false
			}
		}
	}
	return true
}

func (t *tok) stage4() {
	ggl, gl := t.opts.GroupsGroupingLimit, t.opts.GroupingLimit
	if ggl == 0 || gl == 0 {
		return
	}
	digestEnd := t.stageDigestEnd()
	gps := 1 + gl*2 + 3 + 1 + 1
	nextStart := t.s4PreItPos - gps*(ggl+2)
	t.setStageNextStartPos(digestEnd, nextStart)

	for t.resCur <= digestEnd {
		curChar := t.resCur
		if t.resPre-t.resInit > 5 {
			foundExpPack := t.rAt(t.resPre-1) == '.' && t.rAt(t.resPre-2) == '.' &&
				t.rAt(t.resPre-3) == '.' && t.rAt(t.resPre-4) == ',' && t.rAt(t.resPre-5) == ')'
			if foundExpPack {
				p := curChar
				if t.rAt(p) == ',' || t.rAt(p) == ' ' {
					p++
				}
				for p+(gps-2) <= digestEnd {
					if !t.isGroupPattern(p) {
						break
					}
					if p+(gps-1) == digestEnd {
						p += gps - 1
					} else {
						p += gps
					}
				}
				if p > t.resCur+1 {
					t.resCur = p - 1
					continue
				}
				if p >= digestEnd {
					break
				}
			}
		}

		patternFits := t.resCur <= digestEnd-gps*(ggl+1)+2
		if patternFits && t.rAt(curChar) == '(' && t.rAt(curChar+1) == '?' && t.rAt(curChar+2) == ',' {
			start := curChar
			p := curChar
			found := 0
			for p+(gps-2) <= digestEnd {
				if !t.isGroupPattern(p) {
					break
				}
				p += gps - 1
				if t.rAt(p) == ',' {
					p++
				}
				found++
			}
			if found > ggl {
				n := gps * ggl
				copy(t.res[t.resPre:t.resPre+n], t.res[start:start+n])
				t.resPre += n
				t.rSet(t.resPre, '.')
				t.rSet(t.resPre+1, '.')
				t.rSet(t.resPre+2, '.')
				t.resPre += 3
				t.resCur = p
			}
		}

		if t.resCur > digestEnd {
			break
		}
		t.copyPre()
	}

	t.s4COffset = max(digestEnd-(t.resPre-1), 0)
	t.endCompressionStageIt(digestEnd, &t.s4PreItPos)
	t.resCur = t.resPre
}

func (t *tok) finalStage() {
	if t.digStart != nilPos {
		if t.dMaxLen <= t.resCur-t.resInit {
			if t.st == stLiteralNumber && isDigitChar(t.rAt(t.digStart)) {
				t.rSet(t.digStart, '?')
				t.rSet(t.digStart+1, 0)
			}
		}
	}
	f := t.resCur - 1
	for f > t.resInit && (t.rAt(f) == ' ' || t.rAt(f) == ';') {
		f--
	}
	f++
	t.rSet(f, 0)
	t.resCur = f
}

// SkipSpace passes, from q[i], white space and the comments a server skips
// (/* … */, "# …", "-- …" to the end of the line) and returns where the
// next token starts (len(q) at the end); -1 at an executable comment
// (/*! … */, /*M! … */), whose text a server may run, or an unterminated
// one.
func SkipSpace(q []byte, i int) int {
	for i < len(q) {
		switch c := q[i]; {
		case IsSpace(c) || c == '\f' || c == '\v':
			i++
		case c == '/' && i+1 < len(q) && q[i+1] == '*':
			if i+2 < len(q) && (q[i+2] == '!' || q[i+2] == 'M' && i+3 < len(q) && q[i+3] == '!') {
				return -1
			}
			end := bytes.Index(q[i+2:], []byte("*/"))
			if end < 0 {
				return -1
			}
			i += 2 + end + 2
		case IsCommentStart(q, i) && q[i] != '/':
			for i < len(q) && q[i] != '\n' {
				i++
			}
		default:
			return i
		}
	}
	return i
}

// IsCommentStart reports whether a comment starts at q[i]: "/*", "#", or
// "--" followed by a space or control character (MariaDB and MySQL take any
// of those there, not only a space or a tab).
func IsCommentStart(q []byte, i int) bool {
	switch q[i] {
	case '/':
		return i+1 < len(q) && q[i+1] == '*'
	case '#':
		return true
	case '-':
		return i+2 < len(q) && q[i+1] == '-' && dashComment(q[i+2])
	}
	return false
}
