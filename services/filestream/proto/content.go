package proto

import "hash/crc32"

// Pattern is the content of every file: byte i of a file is
// Pattern[i%len(Pattern)]. 63 printable characters and a newline, so a
// printed file is lines of equal length. Because the content is fixed, the
// server knows a file's checksum before it sends the first byte (see
// ContentCRC) and never holds the file: it starts sending at once, whatever
// the size.
const Pattern = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ.\n"

// PatternLen is len(Pattern).
const PatternLen = int64(len(Pattern))

// CRCTable is the CRC-32C (Castagnoli) table files are checked with.
var CRCTable = crc32.MakeTable(crc32.Castagnoli)

// FillContent fills dst with the file content starting at offset off.
func FillContent(dst []byte, off int64) {
	i := int(off % PatternLen)
	for n := 0; n < len(dst); {
		c := copy(dst[n:], Pattern[i:])
		n += c
		i = 0
	}
}

// ContentCRC returns the CRC-32C of the first n bytes of content, that is
// crc32.Checksum(content[:n], CRCTable), in O(log n) time: the CRC of a
// repeated block follows from the block's CRC by the CRC combination of
// zlib's crc32_combine, without reading n bytes.
func ContentCRC(n int64) uint32 {
	if n <= 0 {
		return 0
	}
	q, r := n/PatternLen, n%PatternLen
	block := crc32.Checksum([]byte(Pattern), CRCTable)
	// crc of Pattern repeated q times, by binary doubling from the top bit.
	var crc uint32
	var done int64 // repetitions covered by crc
	for bit := 62; bit >= 0; bit-- {
		if done > 0 {
			crc = crcCombine(crc, crc, done*PatternLen)
			done *= 2
		}
		if q>>uint(bit)&1 == 1 {
			crc = crcCombine(crc, block, PatternLen)
			done++
		}
	}
	if r > 0 {
		crc = crcCombine(crc, crc32.Checksum([]byte(Pattern[:r]), CRCTable), r)
	}
	return crc
}

// castagnoliReflected is the CRC-32C polynomial in reflected bit order.
const castagnoliReflected = 0x82F63B78

// x2n[k] is x^(2^k) modulo the polynomial, reflected.
var x2n = func() (t [32]uint32) {
	p := uint32(1) << 30 // x^1
	t[0] = p
	for k := 1; k < 32; k++ {
		p = multModP(p, p)
		t[k] = p
	}
	return t
}()

// multModP returns a(x)*b(x) modulo the polynomial, reflected.
func multModP(a, b uint32) uint32 {
	if a == 0 {
		return 0
	}
	m := uint32(1) << 31
	var p uint32
	for {
		if a&m != 0 {
			p ^= b
			if a&(m-1) == 0 {
				break
			}
		}
		m >>= 1
		if b&1 != 0 {
			b = b>>1 ^ castagnoliReflected
		} else {
			b >>= 1
		}
	}
	return p
}

// x8nModP returns x^(8n) modulo the polynomial: the operator that moves a
// CRC past n zero bytes.
func x8nModP(n int64) uint32 {
	p := uint32(1) << 31 // x^0
	k := 3
	for n != 0 {
		if n&1 != 0 {
			p = multModP(x2n[k&31], p)
		}
		n >>= 1
		k++
	}
	return p
}

// crcCombine returns the CRC of A followed by B from crcA, crcB and len(B).
func crcCombine(crcA, crcB uint32, lenB int64) uint32 {
	return multModP(x8nModP(lenB), crcA) ^ crcB
}
