package wireshark

import (
	"fmt"
	"strings"
	"testing"

	"github.com/socklab/socklab/services/kit/lab"
)

func TestMovieDB(t *testing.T) {
	c := newCapture(t)
	srv := hostPort(serverIP, lab.MovieDB.Port)
	port := 44000
	// exchange is one connection: a request, its response (each cut into
	// segments at the given offsets), the close.
	exchange := func(req, resp string, reqCuts, respCuts []int) {
		conn := c.tcp(hostPort(clientIP, port), srv)
		port++
		conn.client(split(req, reqCuts...)...)
		conn.server(split(resp, respCuts...)...)
		conn.close()
	}
	exchange(`{"op":"get","title":"aM\u00c9LIE"}`+"\n",
		`{"ok":true,"movie":{"title":"Amélie","year":2001,"director":"Jean-Pierre Jeunet","genres":["Comedy","Romance"],"runtime":122,"rating":"R"}}`+"\n", nil, nil)
	exchange(`{"op":"get","title":"Alien 3"}`+"\r\n",
		`{"ok":false,"error":{"code":"not_found","message":"no movie titled \"Alien 3\""}}`+"\n", []int{10}, []int{20, 40})
	exchange(`{"op":"all","limit":2}`+"\n",
		`{"ok":true,"movies":[{"title":"Alien","year":1979,"director":"Ridley Scott","genres":["Horror","Sci-Fi"],"runtime":117,"rating":"R"},{"title":"Aliens","year":1986,"director":"James Cameron","genres":["Action"],"runtime":137,"rating":"R"}],"next":"aliens"}`+"\n", nil, nil)
	exchange(`{"op":"add","movie":{"title":"Heat","year":1995,"director":"Michael Mann","genres":["Crime","Drama"],"runtime":170,"rating":"R"}}`+"\n",
		`{"ok":false,"error":{"code":"exists","message":"a movie titled \"Heat\" is already stored"}}`+"\n", nil, nil)
	exchange(`{"op":"edit","title":"heat","set":{"runtime":171,"genres":["Crime"]}}`+"\n",
		`{"ok":true,"movie":{"title":"Heat","year":1995,"director":"Michael Mann","genres":["Crime"],"runtime":171,"rating":"R"}}`+"\n", nil, nil)
	exchange("not json\n",
		`{"ok":false,"error":{"code":"bad_request","message":"invalid JSON: invalid character 'o' in literal null (expecting 'u')"}}`+"\n", nil, nil)

	// A page of 300 movies: one response line over many segments.
	var page []string
	for i := range 300 {
		page = append(page, fmt.Sprintf(`{"title":"Film %03d","year":%d,"director":"D","genres":[],"runtime":90,"rating":""}`, i, 1900+i%200))
	}
	big := `{"ok":true,"movies":[` + strings.Join(page, ",") + `],"next":"film 299"}` + "\n"
	var cuts []int
	for at := 1448; at < len(big); at += 1448 {
		cuts = append(cuts, at)
	}
	exchange(`{"op":"all","cursor":"film 000","limit":300}`+"\n", big, nil, cuts)

	// A recording that begins in the middle of a response.
	mid := c.tcpJoined(hostPort(clientIP, port), srv)
	mid.server([]byte(`lund","genres":["Comedy","Drama"],"runtime":90,"rating":""}]}` + "\n"))

	out := decode(t, c, "moviedb", "moviedb",
		"moviedb.op", "moviedb.title", "moviedb.cursor", "moviedb.limit", "moviedb.set", "moviedb.status", "moviedb.error.code",
		"moviedb.movie.title", "moviedb.movie.year", "moviedb.movies", "moviedb.next", "moviedb.response_to", "moviedb.time")
	if !strings.Contains(out, "S: ok 300 movies next=film 299") {
		t.Errorf("the page of 300 movies is not decoded whole:\n%s", out)
	}
}
