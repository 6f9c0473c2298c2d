package proto

import "testing"

// BenchmarkDecodeRequest measures DecodeRequest on each op's line as the
// client writes it (a get takes the fast path; the others the strict
// decoder).
func BenchmarkDecodeRequest(b *testing.B) {
	lines := []struct{ name, line string }{
		{"get", `{"op":"get","title":"Synthetic Picture No. 004242"}`},
		{"all", `{"op":"all","cursor":"synthetic picture no. 004242","limit":1000}`},
		{"add", `{"op":"add","movie":{"title":"Heat","year":1995,"director":"Michael Mann","genres":["Crime","Drama"],"runtime":170,"rating":"R"}}`},
		{"edit", `{"op":"edit","title":"heat","set":{"runtime":171,"genres":["Crime"]}}`},
	}
	for _, l := range lines {
		b.Run(l.name, func(b *testing.B) {
			line := []byte(l.line)
			b.ReportAllocs()
			for b.Loop() {
				if _, err := DecodeRequest(line); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
