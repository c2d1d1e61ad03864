package studio

import (
	"bytes"
	"errors"
	"fmt"
	"image"
	"image/color"
	"image/draw"
	"image/png"
	"math"
	"os"
	"path/filepath"
)

// SampleDirName is the folder under the data directory that holds the sample dataset.
const SampleDirName = "sample-dataset"

// sampleSize is the side of every sample image: SDXL's training resolution.
const sampleSize = 1024

// nodeKind is what a box in a sample diagram stands for; each is drawn differently.
type nodeKind int

const (
	kindClient nodeKind = iota // a person
	kindGateway
	kindService
	kindDatabase // a cylinder
	kindQueue    // a stack of bars
	kindCache
	kindBalancer
	kindStorage
	kindCloud // a cluster boundary
)

// sampleNode is one component, placed on a 4x4 grid.
type sampleNode struct {
	kind     nodeKind
	col, row float64
}

// sampleDiagram is one sample image and its caption ("" leaves it uncaptioned).
type sampleDiagram struct {
	name    string
	caption string
	nodes   []sampleNode
	edges   [][2]int
	cluster []int // nodes drawn inside a shared boundary
}

// sampleDiagrams is the sample dataset, in the tutorial's subject; the trailing
// comma-separated tags are shared so the tag table has something to show.
var sampleDiagrams = []sampleDiagram{
	{"api-gateway-database", "enterprise cloud architecture diagram with api gateway and database, minimal design, white background",
		[]sampleNode{{kindClient, 0, 1.5}, {kindGateway, 1, 1.5}, {kindService, 2, 1.5}, {kindDatabase, 3, 1.5}},
		[][2]int{{0, 1}, {1, 2}, {2, 3}}, nil},
	{"load-balancer-microservices", "enterprise cloud architecture diagram with load balancer and three microservices, minimal design, white background",
		[]sampleNode{{kindClient, 0, 1.5}, {kindBalancer, 1, 1.5}, {kindService, 2.5, 0.5}, {kindService, 2.5, 1.5}, {kindService, 2.5, 2.5}},
		[][2]int{{0, 1}, {1, 2}, {1, 3}, {1, 4}}, []int{2, 3, 4}},
	{"message-queue", "enterprise cloud architecture diagram with message queue between two services, minimal design, white background",
		[]sampleNode{{kindService, 0.5, 1.5}, {kindQueue, 1.5, 1.5}, {kindService, 2.5, 1.5}, {kindDatabase, 2.5, 3}},
		[][2]int{{0, 1}, {1, 2}, {2, 3}}, nil},
	{"cache-layer", "enterprise cloud architecture diagram with cache layer in front of database, minimal design, white background",
		[]sampleNode{{kindClient, 0, 1.5}, {kindService, 1, 1.5}, {kindCache, 2, 0.7}, {kindDatabase, 3, 1.5}},
		[][2]int{{0, 1}, {1, 2}, {1, 3}, {2, 3}}, nil},
	{"cdn-object-storage", "enterprise cloud architecture diagram with cdn in front of web server and object storage, minimal design, white background",
		[]sampleNode{{kindClient, 0, 1.5}, {kindCloud, 1, 0.6}, {kindService, 2, 1.5}, {kindStorage, 3, 0.6}, {kindDatabase, 3, 2.4}},
		[][2]int{{0, 1}, {0, 2}, {1, 3}, {2, 3}, {2, 4}}, nil},
	{"kubernetes-cluster", "enterprise cloud architecture diagram with kubernetes cluster of four pods, minimal design, white background",
		[]sampleNode{{kindBalancer, 0.3, 1.5}, {kindService, 1.7, 0.8}, {kindService, 2.7, 0.8}, {kindService, 1.7, 2.2}, {kindService, 2.7, 2.2}},
		[][2]int{{0, 1}, {0, 3}, {1, 2}, {3, 4}}, []int{1, 2, 3, 4}},
	{"primary-replica", "enterprise cloud architecture diagram with primary and replica databases, minimal design, white background",
		[]sampleNode{{kindService, 0.5, 1.5}, {kindDatabase, 2, 0.8}, {kindDatabase, 2, 2.2}, {kindDatabase, 3.2, 2.2}},
		[][2]int{{0, 1}, {1, 2}, {1, 3}}, nil},
	{"auth-service", "enterprise cloud architecture diagram with authentication service and user database, minimal design, white background",
		[]sampleNode{{kindClient, 0, 1.5}, {kindGateway, 1.2, 1.5}, {kindService, 2.4, 0.6}, {kindDatabase, 3.3, 0.6}, {kindService, 2.4, 2.4}},
		[][2]int{{0, 1}, {1, 2}, {2, 3}, {1, 4}}, nil},
	{"event-bus", "",
		[]sampleNode{{kindService, 0.3, 1.5}, {kindQueue, 1.5, 1.5}, {kindService, 2.8, 0.4}, {kindService, 2.8, 1.5}, {kindService, 2.8, 2.6}},
		[][2]int{{0, 1}, {1, 2}, {1, 3}, {1, 4}}, nil},
	{"availability-zones", "",
		[]sampleNode{{kindBalancer, 1.5, 0.2}, {kindService, 0.5, 1.6}, {kindService, 1.5, 1.6}, {kindService, 2.5, 1.6}, {kindDatabase, 0.5, 2.9}, {kindDatabase, 1.5, 2.9}, {kindDatabase, 2.5, 2.9}},
		[][2]int{{0, 1}, {0, 2}, {0, 3}, {1, 4}, {2, 5}, {3, 6}}, []int{1, 2, 3, 4, 5, 6}},
}

// SampleDataset writes the built-in sample dataset (diagram images drawn by
// this package, most of them captioned) to <dataDir>/sample-dataset the
// first time and returns its path. Later calls never overwrite the user's
// edits: once written, only a deleted folder is written again, and even then
// an existing file is never replaced.
func (s *Studio) SampleDataset() (string, error) {
	dir := filepath.Join(s.dataDir, SampleDirName)
	_, written, err := s.db.Setting(settingSample)
	if err != nil {
		return "", err
	}
	if written {
		if st, err := os.Stat(dir); err == nil && st.IsDir() {
			return dir, nil
		}
	}
	if err := writeSample(dir); err != nil {
		return "", err
	}
	if err := s.db.SetSetting(settingSample, "1"); err != nil {
		return "", err
	}
	return dir, nil
}

// writeSample writes every sample file that does not exist yet.
func writeSample(dir string) error {
	for _, sub := range []string{"images", "captions"} {
		if err := os.MkdirAll(filepath.Join(dir, sub), 0o755); err != nil {
			return fmt.Errorf("sample dataset %s: %w", dir, err)
		}
	}
	for _, dg := range sampleDiagrams {
		ip := filepath.Join(dir, "images", dg.name+".png")
		if !exists(ip) {
			var buf bytes.Buffer
			if err := png.Encode(&buf, drawDiagram(dg)); err != nil {
				return fmt.Errorf("sample image %s: %w", ip, err)
			}
			if err := writeFileAtomic(ip, buf.Bytes(), 0o644); err != nil {
				return err
			}
		}
		cp := filepath.Join(dir, "captions", dg.name+".txt")
		if dg.caption != "" && !exists(cp) {
			if err := writeCaptionFile(cp, dg.caption); err != nil {
				return err
			}
		}
	}
	return nil
}

// exists reports whether something is at p.
func exists(p string) bool {
	_, err := os.Lstat(p)
	return !errors.Is(err, os.ErrNotExist)
}

// Colours of the sample diagrams.
var (
	colBackground = color.RGBA{248, 250, 252, 255}
	colGrid       = color.RGBA{232, 236, 242, 255}
	colInk        = color.RGBA{52, 64, 84, 255}
	colLabel      = color.RGBA{255, 255, 255, 255}
	colCluster    = color.RGBA{226, 238, 255, 255}
	kindFill      = map[nodeKind]color.RGBA{
		kindClient:   {99, 110, 130, 255},
		kindGateway:  {124, 77, 255, 255},
		kindService:  {33, 150, 243, 255},
		kindDatabase: {0, 150, 136, 255},
		kindQueue:    {255, 152, 0, 255},
		kindCache:    {229, 57, 53, 255},
		kindBalancer: {67, 160, 71, 255},
		kindStorage:  {141, 110, 99, 255},
		kindCloud:    {3, 169, 244, 255},
	}
)

// nodeBox is where a node is drawn.
func nodeBox(n sampleNode) image.Rectangle {
	const cell, margin, half = 224, 64, 80
	cx := margin + int(n.col*cell) + cell/2
	cy := margin + int(n.row*cell) + cell/2
	return image.Rect(cx-half, cy-half*3/4, cx+half, cy+half*3/4)
}

// drawDiagram draws one sample image.
func drawDiagram(dg sampleDiagram) *image.RGBA {
	img := image.NewRGBA(image.Rect(0, 0, sampleSize, sampleSize))
	draw.Draw(img, img.Bounds(), &image.Uniform{colBackground}, image.Point{}, draw.Src)
	for x := 0; x < sampleSize; x += 64 {
		fillRect(img, image.Rect(x, 0, x+1, sampleSize), colGrid)
		fillRect(img, image.Rect(0, x, sampleSize, x+1), colGrid)
	}
	// Title bar: a "label" drawn as shapes.
	fillRect(img, image.Rect(48, 32, 976, 36), colInk)
	textBars(img, image.Rect(48, 44, 560, 60), colInk, len(dg.name))
	if len(dg.cluster) > 0 {
		r := nodeBox(dg.nodes[dg.cluster[0]])
		for _, i := range dg.cluster[1:] {
			r = r.Union(nodeBox(dg.nodes[i]))
		}
		r = r.Inset(-28)
		fillRect(img, r, colCluster)
		strokeDashed(img, r, 4, colInk)
	}
	for _, e := range dg.edges {
		a, b := nodeBox(dg.nodes[e[0]]), nodeBox(dg.nodes[e[1]])
		arrow(img, edgePoint(a, b), edgePoint(b, a), colInk)
	}
	for i, n := range dg.nodes {
		drawNode(img, n, i)
	}
	return img
}

// edgePoint is where the line from the centre of a to the centre of b leaves a.
func edgePoint(a, b image.Rectangle) image.Point {
	ca := image.Pt((a.Min.X+a.Max.X)/2, (a.Min.Y+a.Max.Y)/2)
	cb := image.Pt((b.Min.X+b.Max.X)/2, (b.Min.Y+b.Max.Y)/2)
	dx, dy := float64(cb.X-ca.X), float64(cb.Y-ca.Y)
	hw, hh := float64(a.Dx())/2+6, float64(a.Dy())/2+6
	t := math.Inf(1)
	if dx != 0 {
		t = math.Min(t, hw/math.Abs(dx))
	}
	if dy != 0 {
		t = math.Min(t, hh/math.Abs(dy))
	}
	if math.IsInf(t, 1) {
		return ca
	}
	return image.Pt(ca.X+int(dx*t), ca.Y+int(dy*t))
}

// drawNode draws one component with its kind's shape and a label of bars.
func drawNode(img *image.RGBA, n sampleNode, idx int) {
	r := nodeBox(n)
	c := kindFill[n.kind]
	switch n.kind {
	case kindDatabase:
		rx, ry := float64(r.Dx())/2, 18.0
		cx := float64(r.Min.X) + rx
		fillRect(img, image.Rect(r.Min.X, r.Min.Y+int(ry), r.Max.X, r.Max.Y-int(ry)), c)
		fillEllipse(img, cx, float64(r.Max.Y)-ry, rx, ry, c)
		fillEllipse(img, cx, float64(r.Min.Y)+ry, rx, ry, shade(c, 30))
	case kindClient:
		cx := float64(r.Min.X + r.Dx()/2)
		fillEllipse(img, cx, float64(r.Min.Y)+28, 26, 26, c)
		fillEllipse(img, cx, float64(r.Max.Y)-10, 52, 44, c)
		fillRect(img, image.Rect(r.Min.X, r.Max.Y-10, r.Max.X, r.Max.Y+40), colBackground)
		return
	case kindQueue:
		for k := 0; k < 4; k++ {
			y := r.Min.Y + k*r.Dy()/4
			fillRect(img, image.Rect(r.Min.X, y+3, r.Max.X, y+r.Dy()/4-3), shade(c, 10*k))
		}
		return
	case kindCloud:
		cy := float64(r.Min.Y + r.Dy()*3/5)
		for _, d := range [][3]float64{{-45, 10, 40}, {0, -15, 52}, {45, 10, 40}} {
			fillEllipse(img, float64(r.Min.X+r.Dx()/2)+d[0], cy+d[1], d[2], d[2], c)
		}
		textBars(img, image.Rect(r.Min.X+40, int(cy)+8, r.Max.X-40, int(cy)+40), colLabel, idx+3)
		return
	default:
		fillRect(img, r, c)
		strokeRect(img, r, 3, shade(c, -40))
		if n.kind == kindBalancer {
			mid := (r.Min.Y + r.Max.Y) / 2
			for k := -1; k <= 1; k++ {
				arrow(img, image.Pt(r.Min.X+20, mid), image.Pt(r.Max.X-20, mid+k*30), colLabel)
			}
			return
		}
		if n.kind == kindCache {
			fillEllipse(img, float64(r.Max.X-24), float64(r.Min.Y+24), 12, 12, colLabel)
		}
	}
	textBars(img, image.Rect(r.Min.X+16, r.Min.Y+r.Dy()/2-4, r.Max.X-16, r.Max.Y-14), colLabel, idx+int(n.kind))
}

// textBars draws a label as rows of rounded bars of varied length.
func textBars(img *image.RGBA, r image.Rectangle, c color.RGBA, seed int) {
	const rowH = 14
	for k, y := 0, r.Min.Y; y+rowH-4 <= r.Max.Y; k, y = k+1, y+rowH {
		frac := 0.45 + 0.5*float64((seed*37+k*53)%10)/10
		w := int(float64(r.Dx()) * frac)
		fillRect(img, image.Rect(r.Min.X, y, r.Min.X+w, y+rowH-6), c)
		if k == 1 {
			return
		}
	}
}

// shade lightens (positive) or darkens (negative) a colour.
func shade(c color.RGBA, d int) color.RGBA {
	f := func(v uint8) uint8 { return uint8(min(255, max(0, int(v)+d))) }
	return color.RGBA{f(c.R), f(c.G), f(c.B), c.A}
}

// fillRect fills r (clipped to the image).
func fillRect(img *image.RGBA, r image.Rectangle, c color.RGBA) {
	draw.Draw(img, r.Intersect(img.Bounds()), &image.Uniform{c}, image.Point{}, draw.Over)
}

// strokeRect draws r's border, t pixels wide, inside r.
func strokeRect(img *image.RGBA, r image.Rectangle, t int, c color.RGBA) {
	fillRect(img, image.Rect(r.Min.X, r.Min.Y, r.Max.X, r.Min.Y+t), c)
	fillRect(img, image.Rect(r.Min.X, r.Max.Y-t, r.Max.X, r.Max.Y), c)
	fillRect(img, image.Rect(r.Min.X, r.Min.Y, r.Min.X+t, r.Max.Y), c)
	fillRect(img, image.Rect(r.Max.X-t, r.Min.Y, r.Max.X, r.Max.Y), c)
}

// strokeDashed draws a dashed border around r.
func strokeDashed(img *image.RGBA, r image.Rectangle, t int, c color.RGBA) {
	const dash = 18
	for x := r.Min.X; x < r.Max.X; x += 2 * dash {
		e := min(x+dash, r.Max.X)
		fillRect(img, image.Rect(x, r.Min.Y, e, r.Min.Y+t), c)
		fillRect(img, image.Rect(x, r.Max.Y-t, e, r.Max.Y), c)
	}
	for y := r.Min.Y; y < r.Max.Y; y += 2 * dash {
		e := min(y+dash, r.Max.Y)
		fillRect(img, image.Rect(r.Min.X, y, r.Min.X+t, e), c)
		fillRect(img, image.Rect(r.Max.X-t, y, r.Max.X, e), c)
	}
}

// fillEllipse fills the ellipse centred at (cx, cy) with radii rx, ry.
func fillEllipse(img *image.RGBA, cx, cy, rx, ry float64, c color.RGBA) {
	for y := int(cy - ry); y <= int(cy+ry); y++ {
		dy := (float64(y) - cy) / ry
		if dy*dy > 1 {
			continue
		}
		hw := rx * math.Sqrt(1-dy*dy)
		fillRect(img, image.Rect(int(cx-hw), y, int(cx+hw)+1, y+1), c)
	}
}

// arrow draws a thick line from a to b with a filled head at b.
func arrow(img *image.RGBA, a, b image.Point, c color.RGBA) {
	dx, dy := float64(b.X-a.X), float64(b.Y-a.Y)
	l := math.Hypot(dx, dy)
	if l < 1 {
		return
	}
	ux, uy := dx/l, dy/l
	const head, width = 22.0, 12.0
	end := l - head
	for s := 0.0; s <= end; s += 1 {
		x, y := float64(a.X)+ux*s, float64(a.Y)+uy*s
		fillRect(img, image.Rect(int(x)-2, int(y)-2, int(x)+3, int(y)+3), c)
	}
	// Head: a triangle filled row by row across its length.
	for s := 0.0; s <= head; s += 0.5 {
		hw := width * (1 - s/head)
		bx, by := float64(b.X)-ux*(head-s), float64(b.Y)-uy*(head-s)
		for w := -hw; w <= hw; w += 0.5 {
			x, y := bx-uy*w, by+ux*w
			fillRect(img, image.Rect(int(x), int(y), int(x)+1, int(y)+1), c)
		}
	}
}
