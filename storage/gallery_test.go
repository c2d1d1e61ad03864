package storage

import (
	"errors"
	"fmt"
	"testing"
	"time"
)

// addGen records a generation with the given prompt, model and LoRA paths and then sets its
// creation time to at (unix seconds), so date filters and ordering can be checked.
func addGen(t testing.TB, db *DB, prompt, model string, at int64, loras ...string) GalleryItem {
	t.Helper()
	lj := "["
	for i, l := range loras {
		if i > 0 {
			lj += ","
		}
		lj += fmt.Sprintf(`{"path":%q,"weight":0.8,"hash":"h%d"}`, l, i)
	}
	lj += "]"
	neg := "blurry, " + prompt + " negative"
	g, err := db.AddGeneration(Generation{Model: model, LorasJSON: lj, Prompt: prompt, Negative: &neg, Sampler: "euler",
		Steps: 4, CFG: 5, Width: 64, Height: 64, Seed: at, OutputPath: fmt.Sprintf("/out/%d.png", at)})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.sql.Exec(`UPDATE generations SET created_at = ? WHERE id = ?`, time.Unix(at, 0).UnixNano(), g.ID); err != nil {
		t.Fatal(err)
	}
	it, err := db.GalleryItem(g.ID)
	if err != nil {
		t.Fatal(err)
	}
	return it
}

func ids(items []GalleryItem) []int64 {
	out := make([]int64, len(items))
	for i, it := range items {
		out[i] = it.ID
	}
	return out
}

func TestGalleryPagingFiltersFavouritesTrash(t *testing.T) {
	db := openTest(t)
	a := addGen(t, db, "a red car on a street", "/m/base", 100)
	b := addGen(t, db, "a cat sitting", "/m/base", 200, "/l/cat.safetensors")
	c := addGen(t, db, "a red cat", "/m/other", 300, "/l/cat.safetensors", "/l/style.safetensors")
	d := addGen(t, db, "mountains at dawn", "/m/other", 400)

	page := func(q GalleryQuery, off, lim int) []int64 {
		t.Helper()
		items, err := db.GalleryPage(q, off, lim)
		if err != nil {
			t.Fatal(err)
		}
		n, err := db.GalleryCount(q)
		if err != nil {
			t.Fatal(err)
		}
		if all, _ := db.GalleryPage(q, 0, 0); len(all) != n {
			t.Errorf("count %d but %d rows for %+v", n, len(all), q)
		}
		return ids(items)
	}
	eq := func(what string, got []int64, want ...int64) {
		t.Helper()
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("%s: got %v, want %v", what, got, want)
		}
	}
	eq("all, newest first", page(GalleryQuery{}, 0, 0), d.ID, c.ID, b.ID, a.ID)
	eq("page 2 of 2", page(GalleryQuery{}, 2, 2), b.ID, a.ID)
	eq("past the end", page(GalleryQuery{}, 4, 2))
	eq("model", page(GalleryQuery{Model: "/m/other"}, 0, 0), d.ID, c.ID)
	eq("lora", page(GalleryQuery{LoRA: "/l/cat.safetensors"}, 0, 0), c.ID, b.ID)
	eq("lora style", page(GalleryQuery{LoRA: "/l/style.safetensors"}, 0, 0), c.ID)
	eq("since/until", page(GalleryQuery{Since: time.Unix(200, 0), Until: time.Unix(400, 0)}, 0, 0), c.ID, b.ID)

	if err := db.SetFavourite(b.ID, true); err != nil {
		t.Fatal(err)
	}
	eq("favourites", page(GalleryQuery{Favourites: true}, 0, 0), b.ID)
	if it, _ := db.GalleryItem(b.ID); !it.Favourite {
		t.Error("favourite not stored")
	}
	if err := db.SetFavourite(999, true); !errors.Is(err, ErrNotFound) {
		t.Errorf("SetFavourite(missing) = %v, want ErrNotFound", err)
	}

	if err := db.MarkDeleted(c.ID, "/data/trash/3.png"); err != nil {
		t.Fatal(err)
	}
	eq("after delete", page(GalleryQuery{}, 0, 0), d.ID, b.ID, a.ID)
	eq("trash", page(GalleryQuery{Trash: true}, 0, 0), c.ID)
	it, err := db.GalleryItem(c.ID)
	if err != nil || it.DeletedAt.IsZero() || it.TrashPath != "/data/trash/3.png" {
		t.Errorf("deleted item = %+v, %v", it, err)
	}
	loras, err := db.GalleryLoRAs()
	if err != nil || fmt.Sprint(loras) != "[/l/cat.safetensors]" {
		t.Errorf("GalleryLoRAs after deleting the style LoRA's image = %v, %v", loras, err)
	}
	if err := db.RestoreDeleted(c.ID); err != nil {
		t.Fatal(err)
	}
	eq("after restore", page(GalleryQuery{}, 0, 0), d.ID, c.ID, b.ID, a.ID)
	if it, _ := db.GalleryItem(c.ID); !it.DeletedAt.IsZero() || it.TrashPath != "" {
		t.Errorf("restored item = %+v", it)
	}

	models, err := db.GalleryModels()
	if err != nil || len(models) != 2 {
		t.Errorf("GalleryModels = %v, %v", models, err)
	}
	recent, err := db.RecentModels(1)
	if err != nil || fmt.Sprint(recent) != "[/m/other]" {
		t.Errorf("RecentModels(1) = %v, %v", recent, err)
	}
}

func TestGallerySearch(t *testing.T) {
	db := openTest(t)
	a := addGen(t, db, "a red car on a street", "/m/base", 100)
	b := addGen(t, db, "a cat sitting", "/m/base", 200)
	c := addGen(t, db, "a red cat, \"quoted\" OR NOT", "/m/other", 300)
	_ = a
	_, err := db.GalleryPage(GalleryQuery{Search: "red"}, 0, 0)
	if !builtWithFTS5 {
		if !errors.Is(err, ErrNoFullTextSearch) {
			t.Fatalf("search without FTS5: err = %v, want ErrNoFullTextSearch", err)
		}
		if _, err := db.GalleryPage(GalleryQuery{}, 0, 0); err != nil {
			t.Fatalf("listing without a search must work without FTS5: %v", err)
		}
		return
	}
	if err != nil {
		t.Fatal(err)
	}
	search := func(text string, q GalleryQuery) []int64 {
		t.Helper()
		q.Search = text
		items, err := db.GalleryPage(q, 0, 0)
		if err != nil {
			t.Fatalf("search %q: %v", text, err)
		}
		return ids(items)
	}
	for _, tc := range []struct {
		text string
		q    GalleryQuery
		want []int64
	}{
		{"red", GalleryQuery{}, []int64{c.ID, a.ID}},
		{"red ca", GalleryQuery{}, []int64{c.ID, a.ID}}, // the last word is a prefix: car, cat
		{"cat", GalleryQuery{}, []int64{c.ID, b.ID}},
		{"CAT red", GalleryQuery{Model: "/m/other"}, []int64{c.ID}},
		{`"quoted" OR`, GalleryQuery{}, []int64{c.ID}},        // operators and quotes are plain words
		{"blurry", GalleryQuery{}, []int64{c.ID, b.ID, a.ID}}, // the negative prompt is searched too
		{"dog", GalleryQuery{}, nil},
	} {
		if got := search(tc.text, tc.q); fmt.Sprint(got) != fmt.Sprint(tc.want) {
			t.Errorf("search %q %+v = %v, want %v", tc.text, tc.q, got, tc.want)
		}
	}
	// Rows added after the index was built are found.
	d := addGen(t, db, "a red balloon", "/m/base", 400)
	if got := search("balloon", GalleryQuery{}); fmt.Sprint(got) != fmt.Sprint([]int64{d.ID}) {
		t.Errorf("new row: search balloon = %v", got)
	}
	if n, err := db.GalleryCount(GalleryQuery{Search: "red"}); err != nil || n != 3 {
		t.Errorf("GalleryCount(red) = %d, %v", n, err)
	}
}

func TestAddGenerations(t *testing.T) {
	db := openTest(t)
	neg := ""
	gs := []Generation{
		{Model: "/m", Prompt: "old", Sampler: "euler", Steps: 1, CFG: 1, Width: 8, Height: 8, OutputPath: "/o/1.png", CreatedAt: time.Unix(50, 0)},
		{Model: "/m", Prompt: "new", Negative: &neg, Sampler: "euler", Steps: 1, CFG: 1, Width: 8, Height: 8, OutputPath: "/o/2.png",
			LorasJSON: `[{"path":"/l/a.safetensors","weight":1}]`},
	}
	got, err := db.AddGenerations(gs)
	if err != nil || len(got) != 2 {
		t.Fatalf("AddGenerations = %v, %v", got, err)
	}
	items, err := db.GalleryPage(GalleryQuery{}, 0, 0)
	if err != nil || len(items) != 2 || items[0].Prompt != "new" || items[1].CreatedAt.Unix() != 50 || items[0].Negative == nil {
		t.Fatalf("items = %+v, %v", items, err)
	}
	if _, err := db.AddGenerations([]Generation{{Model: "/m", Prompt: "x", LorasJSON: "{bad", OutputPath: "/o/3.png"}}); err == nil {
		t.Error("bad LoRA JSON accepted")
	}
	if n, _ := db.GalleryCount(GalleryQuery{}); n != 2 {
		t.Errorf("a failed batch left rows: %d", n)
	}
}
