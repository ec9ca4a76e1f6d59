package chattest

import (
	"cmp"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/natter-chat/natter/internal/chat"
	"github.com/natter-chat/natter/internal/core"
	"github.com/natter-chat/natter/internal/searchtext"
)

// The search benchmark's corpus: BenchSearchMessages messages over
// benchConvs groups whose one common member, the reader, runs every
// query. Texts draw words from a generated vocabulary with a Zipf
// distribution (a few words are in most messages, most words in few),
// some with accents; one message in twenty is Chinese.
const (
	benchConvs       = 100
	benchOthers      = 30 // users besides the reader; each group has the reader and 3 of them
	benchVocabulary  = 4000
	benchCJKWords    = 300
	benchAppendBatch = 500
	benchReader      = "benchreader"
	benchMarker      = "search bench corpus n=" // title of the conversation that marks a complete corpus
)

// BenchSearchMessages returns the corpus size: NATTER_BENCH_MESSAGES, or
// 20,000 when it is not set.
func BenchSearchMessages(b testing.TB) int {
	b.Helper()
	v := os.Getenv("NATTER_BENCH_MESSAGES")
	if v == "" {
		return 20000
	}
	n, err := strconv.Atoi(strings.ReplaceAll(v, "_", ""))
	if err != nil || n < 1000 {
		b.Fatalf("NATTER_BENCH_MESSAGES=%q: want a number of messages, at least 1000", v)
	}
	return n
}

// BenchSearch measures message search on a store and its index. It
// builds the corpus (unless s already holds a complete one of the same
// size, e.g. a database kept with NATTER_BENCH_DB), brings the index up to
// date with core's Indexer (logging the messages indexed per second), and
// then, per query class, runs b.N searches of the reader's conversations
// as the first page of GET /v1/search asks them (21 results, as of the
// index cursor), reporting the latency's p50 and p99 in milliseconds.
// Classes: common (a word in about one message in ten), rare (a word in
// a few per 100,000), two-words (two mid-frequency words), accented
// (typed without its accents), cjk (a two- or three-character Chinese
// word), one-conversation (a common word in one of the reader's
// conversations, about one in a hundred of all messages) and mixed (all of
// them in turn).
func BenchSearch(b *testing.B, s chat.Store, idx chat.SearchIndex) {
	BenchSearchWith(b, s, idx, BenchSearchOptions{})
}

// BenchSearchOptions adapts BenchSearch to a store.
type BenchSearchOptions struct {
	// Append stores a batch of drafts of new messages (valid, none a retry,
	// in id order) as AppendMessages would: seqs and change positions in
	// batch order. A store can pass a bulk loader (such as PostgreSQL's
	// COPY) to build a large corpus faster. Nil means s.AppendMessages.
	Append func(ctx context.Context, drafts []chat.Draft) error
	// AppendBatch is the most drafts passed to one Append; zero means 500.
	AppendBatch int
	// Indexed, if not nil, is called once the index is up to date, before
	// the first query (e.g. to refresh the planner's statistics).
	Indexed func(ctx context.Context) error
}

// BenchSearchWith is BenchSearch with options.
func BenchSearchWith(b *testing.B, s chat.Store, idx chat.SearchIndex, opts BenchSearchOptions) {
	n := BenchSearchMessages(b)
	c := newBenchCorpus()
	reader := c.ensure(b, s, n, opts)

	ctx := b.Context()
	before, err := idx.SearchCursor(ctx)
	if err != nil {
		b.Fatal(err)
	}
	start := time.Now()
	if err := core.NewIndexer(idx, core.SearchOptions{}, nil).CatchUp(ctx); err != nil {
		b.Fatalf("indexing: %v", err)
	}
	if elapsed := time.Since(start); before == 0 {
		b.Logf("indexed %d messages in %s: %.0f msgs/s (core.Indexer, batches of 200)", n, elapsed.Round(time.Millisecond), float64(n)/elapsed.Seconds())
	} else {
		b.Logf("index was built by an earlier run; caught up in %s", elapsed.Round(time.Millisecond))
	}
	if opts.Indexed != nil {
		if err := opts.Indexed(ctx); err != nil {
			b.Fatal(err)
		}
	}
	asOf, err := idx.SearchCursor(ctx)
	if err != nil {
		b.Fatal(err)
	}

	classes := c.queries(benchReaderConvs(b, s, reader))
	mixed := benchQueryClass{name: "mixed"} // the classes' queries in turn
	for i := range 20 {
		for _, cl := range classes {
			if i < len(cl.queries) {
				mixed.queries = append(mixed.queries, cl.queries[i])
				mixed.convs = append(mixed.convs, cl.conv(i))
			}
		}
	}
	classes = append(classes, mixed)
	for _, cl := range classes {
		b.Run(cl.name, func(b *testing.B) {
			lat := make([]time.Duration, 0, b.N)
			hits := 0
			i := 0
			for b.Loop() {
				terms, conv := cl.queries[i%len(cl.queries)], cl.conv(i%len(cl.queries))
				i++
				t0 := time.Now()
				res, err := idx.SearchMessages(ctx, chat.SearchQuery{User: reader, Conv: conv, Terms: terms, AsOf: asOf, Limit: 21})
				lat = append(lat, time.Since(t0))
				if err != nil {
					b.Fatalf("search %q: %v", terms, err)
				}
				hits += len(res)
			}
			slices.Sort(lat)
			b.ReportMetric(msOf(nearestRank(lat, 50)), "p50-ms")
			b.ReportMetric(msOf(nearestRank(lat, 99)), "p99-ms")
			b.ReportMetric(float64(hits)/float64(len(lat)), "hits/query")
		})
	}
}

type benchQueryClass struct {
	name    string
	queries [][]string            // terms, as searchtext.QueryTerms gives them
	convs   []chat.ConversationID // the conversation each query is limited to; nil for none
}

// conv returns the conversation query i is limited to, 0 for none.
func (cl benchQueryClass) conv(i int) chat.ConversationID {
	if i < len(cl.convs) {
		return cl.convs[i]
	}
	return 0
}

// benchReaderConvs returns the corpus's conversations, in id order.
func benchReaderConvs(b *testing.B, s chat.Store, reader chat.UserID) []chat.ConversationID {
	b.Helper()
	convs, err := s.ListConversations(b.Context(), reader)
	if err != nil {
		b.Fatal(err)
	}
	var out []chat.ConversationID
	for _, cv := range convs {
		if !strings.HasPrefix(cv.Conversation.Title, benchMarker) {
			out = append(out, cv.Conversation.ID)
		}
	}
	slices.Sort(out)
	return out
}

// nearestRank returns the p-th percentile of sorted, which is not empty.
func nearestRank(sorted []time.Duration, p int) time.Duration {
	rank := (p*len(sorted) + 99) / 100
	return sorted[min(max(rank, 1), len(sorted))-1]
}

func msOf(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// benchCorpus generates the corpus's words deterministically: the same
// vocabulary and queries on every run, so a kept database stays valid.
type benchCorpus struct {
	words []string // by rank: words[0] is the most frequent
	cjk   []string // Chinese words of two or three characters
}

func newBenchCorpus() *benchCorpus {
	rng := rand.New(rand.NewPCG(7, 7))
	onsets := []string{"b", "d", "f", "g", "k", "l", "m", "n", "p", "r", "s", "t", "v", "z", "br", "st", "tr", "pl", "ch", "sh"}
	vowels := []string{"a", "e", "i", "o", "u", "ai", "ou", "ea"}
	accented := []string{"é", "è", "ü", "ö", "á", "ñ", "ç", "ø"}
	c := &benchCorpus{}
	seen := map[string]bool{}
	for len(c.words) < benchVocabulary {
		var w strings.Builder
		for range 1 + rng.IntN(3) {
			w.WriteString(onsets[rng.IntN(len(onsets))])
			if rng.IntN(14) == 0 {
				w.WriteString(accented[rng.IntN(len(accented))])
			} else {
				w.WriteString(vowels[rng.IntN(len(vowels))])
			}
		}
		if rng.IntN(3) == 0 {
			w.WriteString(onsets[rng.IntN(len(onsets))][:1])
		}
		// Two words that fold to the same term would blur the classes.
		key := strings.Join(searchtext.QueryTerms(w.String()), " ")
		if !seen[key] {
			seen[key] = true
			c.words = append(c.words, w.String())
		}
	}
	han := []rune("的一是在不了有和人这中大为上个国我以要他时来用们生到作地于出就分对成会可主发年动同工也能下过子说产种面而方后多定行学法所民得经十三之进着等部度家电力里如水化高自二理起小物现实加量都两体制机当使点从业本去把性好应开它合还因由其些然前外天政四日那社义事平形相全表间样与关各重新线内数正心反你明看原又么利比或但质气第向道命此变条只没结解问意建月公无系军很情者最立代想已通并提直题党程展五果料象员革位入常文总次品式活设及管特件长求老头基资边流路级少图山统接知较将组见计别她手角期根论运农指几九区强放决西被干做必战先回则任取据处理府研质")
	for len(c.cjk) < benchCJKWords {
		var w strings.Builder
		for range 2 + rng.IntN(2) {
			w.WriteRune(han[rng.IntN(len(han))])
		}
		if !slices.Contains(c.cjk, w.String()) {
			c.cjk = append(c.cjk, w.String())
		}
	}
	return c
}

// text returns one message's text.
func (c *benchCorpus) text(rng *rand.Rand, zipf, cjkZipf *rand.Zipf) string {
	var t strings.Builder
	if rng.IntN(20) == 0 {
		for range 2 + rng.IntN(8) {
			t.WriteString(c.cjk[cjkZipf.Uint64()])
			if rng.IntN(4) == 0 {
				t.WriteString("，")
			}
		}
		t.WriteString("。")
		return t.String()
	}
	n := 4 + rng.IntN(21)
	for i := range n {
		if i > 0 {
			t.WriteByte(' ')
		}
		w := c.words[zipf.Uint64()]
		if i == 0 {
			w = strings.ToUpper(w[:1]) + w[1:]
		}
		t.WriteString(w)
	}
	t.WriteString([]string{".", ".", ".", "?", "!"}[rng.IntN(5)])
	return t.String()
}

// queries returns the query classes, 20 queries each, as terms; the
// one-conversation class limits common words to one of convs each.
func (c *benchCorpus) queries(convs []chat.ConversationID) []benchQueryClass {
	terms := func(q string) []string { return searchtext.QueryTerms(q) }
	var common, rare, two, accent, cjk [][]string
	one := benchQueryClass{name: "one-conversation"}
	for i := range 20 {
		common = append(common, terms(c.words[10+i]))
		one.queries = append(one.queries, terms(c.words[10+i]))
		one.convs = append(one.convs, convs[(i*7)%len(convs)])
		rare = append(rare, terms(c.words[2000+100*i]))
		two = append(two, terms(c.words[30+7*i]+" "+c.words[40+11*i]))
		cjk = append(cjk, terms(c.cjk[i*5]))
	}
	for _, w := range c.words[20:] {
		if plain := stripBenchAccents(w); plain != w && len(accent) < 20 {
			accent = append(accent, terms(plain))
		}
	}
	return []benchQueryClass{{name: "common", queries: common}, {name: "rare", queries: rare}, {name: "two-words", queries: two},
		{name: "accented", queries: accent}, {name: "cjk", queries: cjk}, one}
}

func stripBenchAccents(w string) string {
	return strings.NewReplacer("é", "e", "è", "e", "ü", "u", "ö", "o", "á", "a", "ñ", "n", "ç", "c", "ø", "o").Replace(w)
}

// ensure makes s hold a complete corpus of n messages and returns the
// reader. A store that holds a complete corpus of n messages is used as
// it is; one of another size is refused.
func (c *benchCorpus) ensure(b *testing.B, s chat.Store, n int, opts BenchSearchOptions) chat.UserID {
	b.Helper()
	ctx := b.Context()
	if u, _, err := s.GetUserByUsername(ctx, benchReader); err == nil {
		convs, err := s.ListConversations(ctx, u.ID)
		if err != nil {
			b.Fatal(err)
		}
		for _, cv := range convs {
			if have, ok := strings.CutPrefix(cv.Conversation.Title, benchMarker); ok {
				if have != strconv.Itoa(n) {
					b.Fatalf("the database holds a corpus of %s messages, not %d: remove it or set NATTER_BENCH_MESSAGES=%s", have, n, have)
				}
				b.Logf("using the corpus of %d messages already in the database", n)
				return u.ID
			}
		}
		b.Fatalf("the database holds an incomplete corpus (a run stopped while building it): remove it")
	}
	return c.build(b, s, n, opts)
}

func (c *benchCorpus) build(b *testing.B, s chat.Store, n int, opts BenchSearchOptions) chat.UserID {
	b.Helper()
	ctx := b.Context()
	ids := NewIDs()
	reader := MustCreateUser(b, s, ids, benchReader)
	others := make([]chat.UserID, benchOthers)
	for i := range others {
		others[i] = MustCreateUser(b, s, ids, fmt.Sprintf("bench%d", i)).ID
	}
	rng := rand.New(rand.NewPCG(1, uint64(n)))
	type conv struct {
		id      chat.ConversationID
		members []chat.UserID
	}
	convs := make([]conv, benchConvs)
	for i := range convs {
		members := []chat.UserID{reader.ID}
		for _, k := range rng.Perm(benchOthers)[:3] {
			members = append(members, others[k])
		}
		convs[i] = conv{MustCreateGroup(b, s, ids, reader.ID, members[1:]...).ID, members}
	}
	zipf := rand.NewZipf(rng, 1.1, 1, benchVocabulary-1)
	cjkZipf := rand.NewZipf(rng, 1.1, 1, benchCJKWords-1)
	batch := cmp.Or(opts.AppendBatch, benchAppendBatch)
	appendDrafts := opts.Append
	if appendDrafts == nil {
		appendDrafts = func(ctx context.Context, drafts []chat.Draft) error {
			res, err := s.AppendMessages(ctx, drafts)
			for _, r := range res {
				err = cmp.Or(err, r.Err)
			}
			return err
		}
	}
	start := time.Now()
	drafts := make([]chat.Draft, 0, batch)
	flush := func() {
		if err := appendDrafts(ctx, drafts); err != nil {
			b.Fatalf("storing messages: %v", err)
		}
		drafts = drafts[:0]
	}
	for i := range n {
		cv := convs[rng.IntN(len(convs))]
		id := chat.MessageID(ids.NextID())
		drafts = append(drafts, chat.Draft{
			ID: id, Conv: cv.id, Sender: cv.members[rng.IntN(len(cv.members))], ClientID: "b" + id.String(),
			Text: c.text(rng, zipf, cjkZipf), SentAt: At(time.Duration(i) * time.Second),
		})
		if len(drafts) == batch {
			flush()
		}
		if (i+1)%100_000 == 0 {
			b.Logf("stored %d of %d messages", i+1, n)
		}
	}
	if len(drafts) > 0 {
		flush()
	}
	elapsed := time.Since(start)
	b.Logf("stored %d messages in %s: %.0f msgs/s (batches of %d)", n, elapsed.Round(time.Millisecond), float64(n)/elapsed.Seconds(), batch)
	mark := chat.Conversation{ID: chat.ConversationID(ids.NextID()), Kind: chat.KindGroup, Title: benchMarker + strconv.Itoa(n), CreatedBy: reader.ID, CreatedAt: At(0)}
	if _, _, err := s.CreateConversation(ctx, mark, []chat.Member{{User: reader.ID, Role: chat.RoleOwner, JoinedAt: At(0)}}); err != nil {
		b.Fatal(err)
	}
	return reader.ID
}
