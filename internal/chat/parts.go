package chat

import "encoding/json"

// partJSON is the stored form of a Part.
type partJSON struct {
	Start int64  `json:"start"`
	End   int64  `json:"end"`
	Key   string `json:"key"`
}

// EncodeParts is how stores keep an upload's parts in one column (a JSON
// array); DecodeParts reads it back.
func EncodeParts(ps []Part) string {
	out := make([]partJSON, len(ps))
	for i, p := range ps {
		out[i] = partJSON(p)
	}
	b, _ := json.Marshal(out) // cannot fail: ints and strings
	return string(b)
}

// DecodeParts reads what EncodeParts wrote; nil for an empty array.
func DecodeParts(s string) ([]Part, error) {
	var in []partJSON
	if err := json.Unmarshal([]byte(s), &in); err != nil {
		return nil, err
	}
	var out []Part
	for _, p := range in {
		out = append(out, Part(p))
	}
	return out, nil
}
