package httpapi

import (
	"archive/zip"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/natter-chat/natter/internal/chat"
	"github.com/natter-chat/natter/internal/core"
	"github.com/natter-chat/natter/internal/protocol"
)

// peopleRoutes registers profiles, contacts, blocks, export and account
// deletion.
func (a *API) peopleRoutes(mux *http.ServeMux) {
	a.handle(mux, "PATCH /v1/users/me/profile", true, a.updateProfile)
	a.handle(mux, "DELETE /v1/users/me", true, a.deleteAccount)
	a.handle(mux, "GET /v1/users/me/export", true, a.export)
	a.handle(mux, "POST /v1/users/me/export", true, a.export)
	a.handle(mux, "GET /v1/contacts", true, a.contacts)
	a.handle(mux, "PUT /v1/contacts/{user}", true, a.setRelation(false, true))
	a.handle(mux, "DELETE /v1/contacts/{user}", true, a.setRelation(false, false))
	a.handle(mux, "GET /v1/blocks", true, a.blocks)
	a.handle(mux, "PUT /v1/blocks/{user}", true, a.setRelation(true, true))
	a.handle(mux, "DELETE /v1/blocks/{user}", true, a.setRelation(true, false))
}

func (a *API) searchUsers(w http.ResponseWriter, r *http.Request, p core.Principal) error {
	q := r.URL.Query()
	limit, _, err := queryInt(r, "limit")
	if err != nil {
		return err
	}
	users, err := a.svc.SearchUsers(r.Context(), p, q.Get("q"), q.Get("after"), int(min(limit, core.MaxUserSearch+1)))
	if err != nil {
		return err
	}
	out := protocol.ProfilesResponse{Users: make([]protocol.Profile, len(users))}
	for i, u := range users {
		out.Users[i] = protocol.FromProfile(u)
	}
	want := int(limit)
	if want == 0 {
		want = 20
	}
	if len(users) == want {
		out.Next = users[len(users)-1].Username
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (a *API) getUser(w http.ResponseWriter, r *http.Request, p core.Principal) error {
	id, err := pathID(r, "id")
	if err != nil {
		return err
	}
	u, err := a.svc.Profile(r.Context(), p, chat.UserID(id))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, protocol.ProfileResponse{User: protocol.FromProfile(u)})
	return nil
}

func (a *API) updateProfile(w http.ResponseWriter, r *http.Request, p core.Principal) error {
	var req protocol.ProfileRequest
	if err := decode(r, &req); err != nil {
		return err
	}
	u, err := a.svc.UpdateProfile(r.Context(), p, core.ProfileUpdate{DisplayName: req.DisplayName, StatusText: req.StatusText, Avatar: req.Avatar})
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, protocol.ProfileResponse{User: protocol.FromProfile(u)})
	return nil
}

func (a *API) contacts(w http.ResponseWriter, r *http.Request, p core.Principal) error {
	list, err := a.svc.Contacts(r.Context(), p)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, protocol.ContactsResponse{Contacts: protocol.FromRelated(list)})
	return nil
}

func (a *API) blocks(w http.ResponseWriter, r *http.Request, p core.Principal) error {
	list, err := a.svc.Blocks(r.Context(), p)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, protocol.BlocksResponse{Blocks: protocol.FromRelated(list)})
	return nil
}

// setRelation handles PUT (on) and DELETE of a contact or (block) a block.
func (a *API) setRelation(block, on bool) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request, p core.Principal) error {
		id, err := pathID(r, "user")
		if err != nil {
			return err
		}
		if block {
			err = a.svc.SetBlock(r.Context(), p, chat.UserID(id), on)
		} else {
			err = a.svc.SetContact(r.Context(), p, chat.UserID(id), on)
		}
		if err != nil {
			return err
		}
		w.WriteHeader(http.StatusNoContent)
		return nil
	}
}

func (a *API) deleteAccount(w http.ResponseWriter, r *http.Request, p core.Principal) error {
	var req protocol.DeleteAccountRequest
	if err := decode(r, &req); err != nil {
		return err
	}
	if req.Password == "" {
		return chat.Errorf(chat.CodeInvalidArgument, "password is required: enter it again to delete the account")
	}
	if err := a.svc.DeleteAccount(r.Context(), p, req.Password, a.clientAddr(r)); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// export streams the caller's data as a ZIP archive, never holding more
// than one page of messages in memory. Once the first byte is out an
// error can no longer become an error response: the connection is cut
// instead, so the client sees a broken download, not a complete-looking
// archive with data missing.
func (a *API) export(w http.ResponseWriter, r *http.Request, p core.Principal) error {
	ctx := r.Context()
	e, err := a.svc.StartExport(ctx, p)
	if err != nil {
		return err
	}
	defer e.Close()
	now := time.Now().UTC()
	w.Header().Set("Content-Type", "application/zip")
	w.Header().Set("Content-Disposition", fmt.Sprintf(`attachment; filename="natter-export-%s-%s.zip"`, p.User, now.Format("20060102")))
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
	zw := zip.NewWriter(w)
	err = writeExport(zw, e, p, now, func(yield func(chat.Message) error) error {
		return a.svc.ExportMessages(ctx, p, yield)
	})
	if err == nil {
		err = a.svc.ExportFiles(ctx, e, func(f core.ExportFile, body io.Reader) error {
			return writeExportFile(zw, f, body, now)
		})
	}
	if err != nil {
		a.log.Warn("data export failed", "user", p.User, "err", err)
		panic(http.ErrAbortHandler)
	}
	if err := zw.Close(); err != nil {
		panic(http.ErrAbortHandler)
	}
	return nil
}

// writeExport writes the archive's files: manifest.json, profile.json,
// conversations.json, contacts.json, blocks.json and one
// messages/<conv>.json per conversation the user sent messages in (the
// attachments and avatar follow, from writeExportFile).
func writeExport(zw *zip.Writer, e *core.Export, p core.Principal, now time.Time, messages func(func(chat.Message) error) error) error {
	put := func(name string, v any) error {
		f, err := zw.CreateHeader(&zip.FileHeader{Name: name, Method: zip.Deflate, Modified: now})
		if err != nil {
			return err
		}
		enc := json.NewEncoder(f)
		enc.SetIndent("", "  ")
		return enc.Encode(v)
	}
	manifest := protocol.ExportManifest{Format: "natter-export-1", User: p.User.String(), GeneratedAt: now,
		Contents: "profile.json: your profile; conversations.json: the conversations you are a member of; " +
			"contacts.json and blocks.json; messages/<conversation id>.json: the messages you sent and did not delete, in seq order; " +
			"attachments/<id>-<name>: the files you uploaded (files lists them); avatar.jpg or avatar.png: your avatar",
		Files: exportFiles(e)}
	convs := make([]protocol.ExportConversation, 0, len(e.Conversations))
	for _, c := range e.Conversations {
		ec := protocol.ExportConversation{ID: c.ID.String(), Kind: string(c.Kind), Title: c.Title, CreatedAt: c.CreatedAt.UTC(), ReadSeq: c.ReadSeq}
		for _, m := range c.Members {
			if m.User == p.User {
				ec.Role, ec.JoinedAt = string(m.Role), m.JoinedAt.UTC()
			}
		}
		convs = append(convs, ec)
	}
	for _, f := range []struct {
		name string
		v    any
	}{
		{"manifest.json", manifest},
		{"profile.json", protocol.FromProfile(e.Profile)},
		{"conversations.json", convs},
		{"contacts.json", protocol.FromRelated(e.Contacts)},
		{"blocks.json", protocol.FromRelated(e.Blocks)},
	} {
		if err := put(f.name, f.v); err != nil {
			return err
		}
	}
	return writeMessages(zw, now, messages)
}

// writeMessages writes each conversation's messages as one JSON array,
// one message per line, as they arrive (ordered by conversation).
func writeMessages(zw *zip.Writer, now time.Time, messages func(func(chat.Message) error) error) error {
	var f interface{ Write([]byte) (int, error) }
	var conv chat.ConversationID
	first := true
	end := func() error {
		if f == nil {
			return nil
		}
		_, err := f.Write([]byte("\n]\n"))
		return err
	}
	err := messages(func(m chat.Message) error {
		if m.Conv != conv || f == nil {
			if err := end(); err != nil {
				return err
			}
			var err error
			if f, err = zw.CreateHeader(&zip.FileHeader{Name: "messages/" + m.Conv.String() + ".json", Method: zip.Deflate, Modified: now}); err != nil {
				return err
			}
			if _, err := f.Write([]byte("[\n")); err != nil {
				return err
			}
			conv, first = m.Conv, true
		}
		b, err := json.Marshal(protocol.FromMessage(m))
		if err != nil {
			return err
		}
		if !first {
			b = append([]byte(",\n"), b...)
		}
		first = false
		_, err = f.Write(b)
		return err
	})
	if err != nil {
		return err
	}
	return end()
}
