// Command c2spcheck is the independent side of tests/test_c2sp.py: it opens and signs
// C2SP signed notes with Go's golang.org/x/mod/sumdb/note (Debian's golang-golang-x-mod-dev,
// x/mod v0.7.0) and parses checkpoint bodies with golang.org/x/mod/sumdb/tlog.ParseTree.
//
// x/mod has no cosignature/v1 support, so the Ed25519 cosignature verifier and signer below
// (cosigVerifier, cosigSigner) were written for this test from the C2SP text alone
// (c2sp.org/tlog-cosignature, tlog-cosignature.md at 01194db11950a0ae2b2b2401afa0a4063a822458),
// not from custody's Python code. They plug into note.Open and note.Sign through x/mod's own
// Verifier and Signer interfaces, so the note framing stays Go's.
//
// Usage: c2spcheck open|sign < requests.json > results.json (one JSON array each way).
// It reads stdin and writes stdout only: no files, no network.
package main

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

const (
	algCosigV1 = 0x04
	// tlog-cosignature: the timestamp "MUST NOT exceed 2^63 - 1".
	maxCosigTime = 1<<63 - 1
)

// cosigKeyHash is "SHA-256(<name> || "\n" || 0x04 || 32-byte Ed25519 cosigner public key)[:4]".
func cosigKeyHash(name string, pub []byte) uint32 {
	h := sha256.New()
	h.Write([]byte(name))
	h.Write([]byte("\n"))
	h.Write([]byte{algCosigV1})
	h.Write(pub)
	return binary.BigEndian.Uint32(h.Sum(nil))
}

// cosigMessage is the header line, the timestamp line, then the whole note body.
func cosigMessage(t uint64, text []byte) []byte {
	m := []byte("cosignature/v1\ntime " + strconv.FormatUint(t, 10) + "\n")
	return append(m, text...)
}

type cosigVerifier struct {
	name string
	hash uint32
	pub  ed25519.PublicKey
}

func (v *cosigVerifier) Name() string    { return v.name }
func (v *cosigVerifier) KeyHash() uint32 { return v.hash }
func (v *cosigVerifier) Verify(msg, sig []byte) bool {
	// timestamped_signature: u64 timestamp (big-endian) then the 64-byte Ed25519 signature.
	if len(sig) != 8+ed25519.SignatureSize {
		return false
	}
	t := binary.BigEndian.Uint64(sig[:8])
	if t > maxCosigTime {
		return false
	}
	return ed25519.Verify(v.pub, cosigMessage(t, msg), sig[8:])
}

// newCosigVerifier reads a vkey "<name>+<hex key ID>+<base64(0x04 || public key)>".
func newCosigVerifier(vkey string) (*cosigVerifier, error) {
	parts := strings.SplitN(vkey, "+", 3)
	if len(parts) != 3 || len(parts[1]) != 8 {
		return nil, errors.New("malformed cosignature vkey")
	}
	id, err := strconv.ParseUint(parts[1], 16, 32)
	if err != nil {
		return nil, err
	}
	key, err := base64.StdEncoding.DecodeString(parts[2])
	if err != nil || len(key) != 1+ed25519.PublicKeySize || key[0] != algCosigV1 {
		return nil, errors.New("not a cosignature/v1 Ed25519 vkey")
	}
	v := &cosigVerifier{name: parts[0], hash: cosigKeyHash(parts[0], key[1:]), pub: key[1:]}
	if uint32(id) != v.hash {
		return nil, errors.New("cosignature vkey key ID does not match")
	}
	return v, nil
}

type cosigSigner struct {
	name string
	hash uint32
	priv ed25519.PrivateKey
	time uint64
}

func (s *cosigSigner) Name() string    { return s.name }
func (s *cosigSigner) KeyHash() uint32 { return s.hash }
func (s *cosigSigner) Sign(msg []byte) ([]byte, error) {
	sig := make([]byte, 8, 8+ed25519.SignatureSize)
	binary.BigEndian.PutUint64(sig, s.time)
	return append(sig, ed25519.Sign(s.priv, cosigMessage(s.time, msg))...), nil
}

type openRequest struct {
	Note       string   `json:"note"` // base64 of the note bytes
	VKeys      []string `json:"vkeys"`
	CosigVKeys []string `json:"cosig_vkeys"`
	Require    []string `json:"require"` // "name+hex" that must be among the verified
	Origin     string   `json:"origin"`  // expected checkpoint origin; "" = not a checkpoint
}

type openResult struct {
	OK         bool              `json:"ok"`
	Stage      string            `json:"stage,omitempty"`
	Error      string            `json:"error,omitempty"`
	Text       string            `json:"text,omitempty"`
	Verified   []string          `json:"verified"`
	Unverified []string          `json:"unverified"`
	Times      map[string]uint64 `json:"times"`
	Size       int64             `json:"size"`
	Root       string            `json:"root,omitempty"`
}

func sigID(name string, hash uint32) string { return fmt.Sprintf("%s+%08x", name, hash) }

func verifiers(vkeys, cosig []string) (note.Verifiers, error) {
	var list []note.Verifier
	for _, k := range vkeys {
		v, err := note.NewVerifier(k)
		if err != nil {
			return nil, err
		}
		list = append(list, v)
	}
	for _, k := range cosig {
		v, err := newCosigVerifier(k)
		if err != nil {
			return nil, err
		}
		list = append(list, v)
	}
	return note.VerifierList(list...), nil
}

// checkCheckpoint applies tlog-checkpoint's note-text rules (written from the C2SP text) and
// then x/mod's tlog.ParseTree for the size and hash lines. ParseTree only knows the checksum
// database's fixed first line, so the origin (checked here) is swapped for it.
func checkCheckpoint(text, origin string, r *openResult) error {
	if !strings.HasSuffix(text, "\n") {
		return errors.New("checkpoint text does not end with a newline")
	}
	lines := strings.Split(strings.TrimSuffix(text, "\n"), "\n")
	if len(lines) < 3 {
		return errors.New("checkpoint has fewer than three lines")
	}
	for _, l := range lines {
		if l == "" {
			return errors.New("checkpoint has an empty line")
		}
	}
	if lines[0] != origin {
		return errors.New("checkpoint origin is not the expected one")
	}
	tree, err := tlog.ParseTree([]byte("go.sum database tree\n" + strings.Join(lines[1:], "\n") + "\n"))
	if err != nil {
		return err
	}
	r.Size = tree.N
	r.Root = tree.Hash.String()
	return nil
}

func open(req openRequest) (r openResult) {
	r.Verified, r.Unverified, r.Times = []string{}, []string{}, map[string]uint64{}
	fail := func(stage string, err error) openResult {
		r.OK, r.Stage, r.Error = false, stage, err.Error()
		return r
	}
	msg, err := base64.StdEncoding.DecodeString(req.Note)
	if err != nil {
		return fail("input", err)
	}
	known, err := verifiers(req.VKeys, req.CosigVKeys)
	if err != nil {
		return fail("vkey", err)
	}
	n, err := note.Open(msg, known)
	if err != nil {
		return fail("open", err)
	}
	r.Text = n.Text
	for _, s := range n.Sigs {
		id := sigID(s.Name, s.Hash)
		r.Verified = append(r.Verified, id)
		raw, _ := base64.StdEncoding.DecodeString(s.Base64)
		if len(raw) == 4+8+ed25519.SignatureSize {
			r.Times[id] = binary.BigEndian.Uint64(raw[4:12])
		}
	}
	for _, s := range n.UnverifiedSigs {
		r.Unverified = append(r.Unverified, sigID(s.Name, s.Hash))
	}
	for _, want := range req.Require {
		found := false
		for _, got := range r.Verified {
			found = found || got == want
		}
		if !found {
			return fail("policy", errors.New("required signature missing: "+want))
		}
	}
	if req.Origin != "" {
		if err := checkCheckpoint(n.Text, req.Origin, &r); err != nil {
			return fail("checkpoint", err)
		}
	}
	r.OK = true
	return r
}

type cosignRequest struct {
	Name string `json:"name"`
	Seed string `json:"seed"` // base64 of the 32-byte Ed25519 seed
	Time uint64 `json:"time"`
}

type signRequest struct {
	Note      string          `json:"note"` // base64 of a signed note to add to, or ""
	VKeys     []string        `json:"vkeys"`
	Text      string          `json:"text"`
	SKeys     []string        `json:"skeys"` // x/mod signer keys "PRIVATE+KEY+name+hex+base64"
	Cosigners []cosignRequest `json:"cosigners"`
}

type signResult struct {
	Note       string   `json:"note,omitempty"`
	Error      string   `json:"error,omitempty"`
	VKeys      []string `json:"vkeys"`       // from x/mod NewEd25519VerifierKey
	CosigVKeys []string `json:"cosig_vkeys"` // from the C2SP-text code above
}

func sign(req signRequest) (r signResult) {
	r.VKeys, r.CosigVKeys = []string{}, []string{}
	var signers []note.Signer
	for _, sk := range req.SKeys {
		s, err := note.NewSigner(sk)
		if err != nil {
			r.Error = err.Error()
			return r
		}
		signers = append(signers, s)
		seed, _ := base64.StdEncoding.DecodeString(strings.SplitN(sk, "+", 5)[4])
		vk, err := note.NewEd25519VerifierKey(s.Name(), ed25519.NewKeyFromSeed(seed[1:]).Public().(ed25519.PublicKey))
		if err != nil {
			r.Error = err.Error()
			return r
		}
		r.VKeys = append(r.VKeys, vk)
	}
	for _, c := range req.Cosigners {
		seed, err := base64.StdEncoding.DecodeString(c.Seed)
		if err != nil || len(seed) != ed25519.SeedSize {
			r.Error = "bad cosigner seed"
			return r
		}
		priv := ed25519.NewKeyFromSeed(seed)
		pub := priv.Public().(ed25519.PublicKey)
		h := cosigKeyHash(c.Name, pub)
		signers = append(signers, &cosigSigner{name: c.Name, hash: h, priv: priv, time: c.Time})
		r.CosigVKeys = append(r.CosigVKeys, fmt.Sprintf("%s+%08x+%s", c.Name, h,
			base64.StdEncoding.EncodeToString(append([]byte{algCosigV1}, pub...))))
	}
	n := &note.Note{Text: req.Text}
	if req.Note != "" {
		msg, err := base64.StdEncoding.DecodeString(req.Note)
		if err != nil {
			r.Error = err.Error()
			return r
		}
		known, err := verifiers(req.VKeys, nil)
		if err != nil {
			r.Error = err.Error()
			return r
		}
		if n, err = note.Open(msg, known); err != nil {
			r.Error = err.Error()
			return r
		}
	}
	out, err := note.Sign(n, signers...)
	if err != nil {
		r.Error = err.Error()
		return r
	}
	r.Note = base64.StdEncoding.EncodeToString(out)
	return r
}

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: c2spcheck open|sign < requests.json")
		os.Exit(2)
	}
	var in bytes.Buffer
	if _, err := in.ReadFrom(os.Stdin); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	var out interface{}
	switch os.Args[1] {
	case "open":
		var reqs []openRequest
		if err := json.Unmarshal(in.Bytes(), &reqs); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		results := make([]openResult, len(reqs))
		for i, req := range reqs {
			results[i] = open(req)
		}
		out = results
	case "sign":
		var reqs []signRequest
		if err := json.Unmarshal(in.Bytes(), &reqs); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		results := make([]signResult, len(reqs))
		for i, req := range reqs {
			results[i] = sign(req)
		}
		out = results
	default:
		fmt.Fprintln(os.Stderr, "usage: c2spcheck open|sign < requests.json")
		os.Exit(2)
	}
	if err := json.NewEncoder(os.Stdout).Encode(out); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
