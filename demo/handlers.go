package demo

import (
	"fmt"
	"net/http"
	"slices"
	"strings"
	"unicode"

	"github.com/lockbox-oss/lockbox/grantsig"
)

// registerRoutes registers the service's catalog routes. Every handler runs
// with s.mu held and the tenant already looked up (see handle).
func (s *Service) registerRoutes() {
	switch s.name {
	case Exchange:
		s.handle("GET /tenants/{tenant}/mailboxes", s.getMailboxes)
		s.handle("GET /tenants/{tenant}/mailboxes/{mailbox}/messages", s.getMessages)
		s.handle("GET /tenants/{tenant}/mailboxes/{mailbox}/statistics", s.getStatistics)
		s.handle("POST /tenants/{tenant}/mailboxes/{mailbox}/repair", s.newRepairRequest)
		s.handle("DELETE /tenants/{tenant}/mailboxes/{mailbox}/messages/{id}", s.removeMessage)
	case SharePoint:
		s.handle("GET /tenants/{tenant}/sites", s.getSites)
		s.handle("GET /tenants/{tenant}/sites/{site}/files", s.getSiteFiles)
		s.handle("GET /tenants/{tenant}/sites/{site}/files/{file}", s.getFileContent)
		s.handle("PATCH /tenants/{tenant}/sites/{site}", s.setSite)
		s.handle("DELETE /tenants/{tenant}/sites/{site}/files/{file}", s.removeFile)
	case OneDrive:
		s.handle("GET /tenants/{tenant}/drives", s.getDrives)
		s.handle("GET /tenants/{tenant}/drives/{drive}/items", s.getDriveItems)
		s.handle("GET /tenants/{tenant}/drives/{drive}/items/{item}/content", s.getItemContent)
		s.handle("DELETE /tenants/{tenant}/drives/{drive}/items/{item}", s.removeItem)
	}
}

func claimsOf(r *http.Request) grantsig.Claims {
	c, _ := r.Context().Value(claimsKey{}).(grantsig.Claims)
	return c
}

func notFound(w http.ResponseWriter, kind, id string) {
	writeError(w, http.StatusNotFound, CodeNotFound, fmt.Sprintf("%s %q not found", kind, id))
}

// Exchange.

type mailboxView struct {
	mailboxInfo
	ItemCount      int             `json:"item_count"`
	TotalItemSize  int             `json:"total_item_size"`
	RepairRequests []repairRequest `json:"repair_requests"`
}

func (s *Service) mailbox(w http.ResponseWriter, r *http.Request, t *tenantData) *mailbox {
	id := r.PathValue("mailbox")
	for _, m := range t.mailboxes {
		if m.ID == id {
			return m
		}
	}
	notFound(w, "mailbox", id)
	return nil
}

func (s *Service) getMailboxes(w http.ResponseWriter, r *http.Request, t *tenantData) {
	views := make([]mailboxView, 0, len(t.mailboxes))
	for _, m := range t.mailboxes {
		v := mailboxView{mailboxInfo: m.mailboxInfo, ItemCount: len(m.messages), RepairRequests: slices.Clone(m.repairs)}
		if v.RepairRequests == nil {
			v.RepairRequests = []repairRequest{}
		}
		for _, msg := range m.messages {
			v.TotalItemSize += msg.Size
		}
		views = append(views, v)
	}
	writeJSON(w, http.StatusOK, map[string]any{"tenant": r.PathValue("tenant"), "mailboxes": views})
}

// getMessages lists a mailbox's messages, optionally of one folder
// (?folder=Inbox).
func (s *Service) getMessages(w http.ResponseWriter, r *http.Request, t *tenantData) {
	m := s.mailbox(w, r, t)
	if m == nil {
		return
	}
	folder := r.URL.Query().Get("folder")
	msgs := make([]message, 0, len(m.messages))
	for _, msg := range m.messages {
		if folder == "" || strings.EqualFold(folder, msg.Folder) {
			c := *msg
			c.To = slices.Clone(msg.To)
			msgs = append(msgs, c)
		}
	}
	writeJSON(w, http.StatusOK, map[string]any{"mailbox": m.ID, "messages": msgs})
}

type folderStats struct {
	Name                       string `json:"name"`
	FolderPath                 string `json:"folder_path"`
	FolderType                 string `json:"folder_type"`
	ItemsInFolder              int    `json:"items_in_folder"`
	FolderSize                 int    `json:"folder_size"`
	NewestItemReceivedDate     string `json:"newest_item_received_date,omitempty"`
	OldestItemReceivedDate     string `json:"oldest_item_received_date,omitempty"`
	ItemsInFolderAndSubfolders int    `json:"items_in_folder_and_subfolders"`
}

// getStatistics is Get-MailboxFolderStatistics, computed from the current
// messages, so a removed message shows here at once.
func (s *Service) getStatistics(w http.ResponseWriter, r *http.Request, t *tenantData) {
	m := s.mailbox(w, r, t)
	if m == nil {
		return
	}
	stats := make([]folderStats, 0, len(folders))
	totalItems, totalSize := 0, 0
	for _, f := range folders {
		st := folderStats{Name: f.name, FolderPath: "/" + f.name, FolderType: f.kind}
		var newest, oldest string
		for _, msg := range m.messages {
			if msg.Folder != f.name {
				continue
			}
			st.ItemsInFolder++
			st.FolderSize += msg.Size
			ts := msg.ReceivedAt.UTC().Format("2006-01-02T15:04:05Z")
			if newest == "" || ts > newest {
				newest = ts
			}
			if oldest == "" || ts < oldest {
				oldest = ts
			}
		}
		st.NewestItemReceivedDate, st.OldestItemReceivedDate = newest, oldest
		st.ItemsInFolderAndSubfolders = st.ItemsInFolder
		totalItems += st.ItemsInFolder
		totalSize += st.FolderSize
		stats = append(stats, st)
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"mailbox":          m.ID,
		"folders":          stats,
		"total_item_count": totalItems,
		"total_item_size":  totalSize,
	})
}

// corruptionTypes are those New-MailboxRepairRequest accepts; the default
// set is what it checks when none is named.
var (
	corruptionTypes = []string{
		"AggregateCounts", "CorruptJunkRule", "DropAllLazyIndexes", "FolderACL",
		"FolderView", "ImapId", "MessageId", "MessageMoveState", "MessagePtagCn",
		"MissingSpecialFolders", "ProvisionedFolder", "ReplState",
		"RestrictionFolder", "RuleMessageClass", "SearchFolder", "UniqueMidIndex",
	}
	defaultCorruptionTypes = []string{"SearchFolder", "AggregateCounts", "ProvisionedFolder", "FolderView"}
)

// newRepairRequest is New-MailboxRepairRequest: it queues a repair and
// answers 202 with its id. The body is optional:
// {"corruption_types": ["FolderView"], "detect_only": true}.
func (s *Service) newRepairRequest(w http.ResponseWriter, r *http.Request, t *tenantData) {
	m := s.mailbox(w, r, t)
	if m == nil {
		return
	}
	var body struct {
		CorruptionTypes []string `json:"corruption_types"`
		DetectOnly      bool     `json:"detect_only"`
	}
	if _, err := decodeBody(r, &body); err != nil {
		writeError(w, http.StatusBadRequest, CodeBadRequest, err.Error())
		return
	}
	types := body.CorruptionTypes
	if len(types) == 0 {
		types = defaultCorruptionTypes
	}
	for _, ct := range types {
		if !slices.Contains(corruptionTypes, ct) {
			writeError(w, http.StatusBadRequest, CodeBadRequest, fmt.Sprintf("unknown corruption type %q (want one of %s)", ct, strings.Join(corruptionTypes, ", ")))
			return
		}
	}
	c := claimsOf(r)
	s.seq++
	rr := repairRequest{
		ID:              fmt.Sprintf("repair-%06d", s.seq),
		Mailbox:         m.ID,
		CorruptionTypes: slices.Clone(types),
		DetectOnly:      body.DetectOnly,
		Status:          "Queued",
		CreatedAt:       s.now().UTC(),
		RequestedBy:     Operator,
		LockboxRequest:  c.RequestID,
	}
	m.repairs = append(m.repairs, rr)
	writeJSON(w, http.StatusAccepted, rr)
}

// removeMessage is Remove-MailboxMessage: the message is gone afterwards.
func (s *Service) removeMessage(w http.ResponseWriter, r *http.Request, t *tenantData) {
	m := s.mailbox(w, r, t)
	if m == nil {
		return
	}
	id := r.PathValue("id")
	i := m.findMessage(id)
	if i < 0 {
		notFound(w, "message", id)
		return
	}
	m.messages = slices.Delete(m.messages, i, i+1)
	writeJSON(w, http.StatusOK, map[string]any{"mailbox": m.ID, "deleted": id})
}

// SharePoint.

type siteView struct {
	siteInfo
	FileCount        int `json:"file_count"`
	StorageUsedBytes int `json:"storage_used_bytes"`
}

func viewSite(st *site) siteView {
	v := siteView{siteInfo: st.siteInfo, FileCount: len(st.files)}
	for _, f := range st.files {
		v.StorageUsedBytes += len(f.content)
	}
	return v
}

type fileView struct {
	fileInfo
	Size    int     `json:"size"`
	Content *string `json:"content,omitempty"`
}

func viewFile(f *file, withContent bool) fileView {
	v := fileView{fileInfo: f.fileInfo, Size: len(f.content)}
	if withContent {
		c := f.content
		v.Content = &c
	}
	return v
}

func (s *Service) site(w http.ResponseWriter, r *http.Request, t *tenantData) *site {
	id := r.PathValue("site")
	for _, st := range t.sites {
		if st.ID == id {
			return st
		}
	}
	notFound(w, "site", id)
	return nil
}

func (s *Service) getSites(w http.ResponseWriter, r *http.Request, t *tenantData) {
	views := make([]siteView, 0, len(t.sites))
	for _, st := range t.sites {
		views = append(views, viewSite(st))
	}
	writeJSON(w, http.StatusOK, map[string]any{"tenant": r.PathValue("tenant"), "sites": views})
}

func (s *Service) getSiteFiles(w http.ResponseWriter, r *http.Request, t *tenantData) {
	st := s.site(w, r, t)
	if st == nil {
		return
	}
	views := make([]fileView, 0, len(st.files))
	for _, f := range st.files {
		views = append(views, viewFile(f, false))
	}
	writeJSON(w, http.StatusOK, map[string]any{"site": st.ID, "files": views})
}

// getFileContent is Get-SPOFileContent: the file's metadata and its text.
func (s *Service) getFileContent(w http.ResponseWriter, r *http.Request, t *tenantData) {
	st := s.site(w, r, t)
	if st == nil {
		return
	}
	id := r.PathValue("file")
	i := st.findFile(id)
	if i < 0 {
		notFound(w, "file", id)
		return
	}
	writeJSON(w, http.StatusOK, viewFile(st.files[i], true))
}

// The values Set-SPOSite accepts.
var (
	sharingCapabilities = []string{"Disabled", "ExistingExternalUserSharingOnly", "ExternalUserSharingOnly", "ExternalUserAndGuestSharing"}
	lockStates          = []string{"Unlock", "ReadOnly", "NoAccess"}
)

// maxQuotaMB is 25 TB, the largest site quota.
const maxQuotaMB = 25 << 20

// setSite is Set-SPOSite: a PATCH of the fields named in the body, e.g.
// {"title": "Support", "lock_state": "ReadOnly", "storage_quota_mb": 2048,
// "sharing_capability": "Disabled", "owner": "adele.vance@contoso.example"}.
// Everything is validated before anything changes.
func (s *Service) setSite(w http.ResponseWriter, r *http.Request, t *tenantData) {
	st := s.site(w, r, t)
	if st == nil {
		return
	}
	var p struct {
		Title             *string `json:"title"`
		Owner             *string `json:"owner"`
		StorageQuotaMB    *int64  `json:"storage_quota_mb"`
		SharingCapability *string `json:"sharing_capability"`
		LockState         *string `json:"lock_state"`
	}
	empty, err := decodeBody(r, &p)
	if err != nil {
		writeError(w, http.StatusBadRequest, CodeBadRequest, err.Error())
		return
	}
	if empty || (p.Title == nil && p.Owner == nil && p.StorageQuotaMB == nil && p.SharingCapability == nil && p.LockState == nil) {
		writeError(w, http.StatusBadRequest, CodeBadRequest, "name at least one of title, owner, storage_quota_mb, sharing_capability, lock_state")
		return
	}
	bad := func(format string, args ...any) {
		writeError(w, http.StatusBadRequest, CodeBadRequest, fmt.Sprintf(format, args...))
	}
	switch {
	case p.Title != nil && !validText(*p.Title, 255):
		bad("title must be 1 to 255 printable characters")
	case p.Owner != nil && (!validText(*p.Owner, 320) || strings.Count(*p.Owner, "@") != 1 || strings.ContainsAny(*p.Owner, " \t")):
		bad("owner must be a user's e-mail address")
	case p.StorageQuotaMB != nil && (*p.StorageQuotaMB < 1 || *p.StorageQuotaMB > maxQuotaMB):
		bad("storage_quota_mb must be between 1 and %d", maxQuotaMB)
	case p.SharingCapability != nil && !slices.Contains(sharingCapabilities, *p.SharingCapability):
		bad("sharing_capability must be one of %s", strings.Join(sharingCapabilities, ", "))
	case p.LockState != nil && !slices.Contains(lockStates, *p.LockState):
		bad("lock_state must be one of %s", strings.Join(lockStates, ", "))
	default:
		if p.Title != nil {
			st.Title = *p.Title
		}
		if p.Owner != nil {
			st.Owner = *p.Owner
		}
		if p.StorageQuotaMB != nil {
			st.StorageQuotaMB = *p.StorageQuotaMB
		}
		if p.SharingCapability != nil {
			st.SharingCapability = *p.SharingCapability
		}
		if p.LockState != nil {
			st.LockState = *p.LockState
		}
		writeJSON(w, http.StatusOK, viewSite(st))
	}
}

func validText(s string, max int) bool {
	if s == "" || len(s) > max || strings.TrimSpace(s) != s {
		return false
	}
	for _, c := range s {
		if !unicode.IsPrint(c) {
			return false
		}
	}
	return true
}

// removeFile is Remove-SPOFile. A site locked with Set-SPOSite (ReadOnly or
// NoAccess) refuses it with 423.
func (s *Service) removeFile(w http.ResponseWriter, r *http.Request, t *tenantData) {
	st := s.site(w, r, t)
	if st == nil {
		return
	}
	id := r.PathValue("file")
	i := st.findFile(id)
	if i < 0 {
		notFound(w, "file", id)
		return
	}
	if st.LockState != "Unlock" {
		writeError(w, http.StatusLocked, CodeSiteLocked, fmt.Sprintf("site %q is locked (%s)", st.ID, st.LockState))
		return
	}
	st.files = slices.Delete(st.files, i, i+1)
	writeJSON(w, http.StatusOK, map[string]any{"site": st.ID, "deleted": id})
}

// OneDrive.

type driveView struct {
	driveInfo
	ItemCount int   `json:"item_count"`
	UsedBytes int64 `json:"used_bytes"`
}

type itemView struct {
	itemInfo
	Size    int     `json:"size"`
	Content *string `json:"content,omitempty"`
}

func viewItem(it *item, withContent bool) itemView {
	v := itemView{itemInfo: it.itemInfo, Size: len(it.content)}
	if withContent {
		c := it.content
		v.Content = &c
	}
	return v
}

func (s *Service) drive(w http.ResponseWriter, r *http.Request, t *tenantData) *drive {
	id := r.PathValue("drive")
	for _, d := range t.drives {
		if d.ID == id {
			return d
		}
	}
	notFound(w, "drive", id)
	return nil
}

func (s *Service) getDrives(w http.ResponseWriter, r *http.Request, t *tenantData) {
	views := make([]driveView, 0, len(t.drives))
	for _, d := range t.drives {
		v := driveView{driveInfo: d.driveInfo, ItemCount: len(d.items)}
		for _, it := range d.items {
			v.UsedBytes += int64(len(it.content))
		}
		views = append(views, v)
	}
	writeJSON(w, http.StatusOK, map[string]any{"tenant": r.PathValue("tenant"), "drives": views})
}

func (s *Service) getDriveItems(w http.ResponseWriter, r *http.Request, t *tenantData) {
	d := s.drive(w, r, t)
	if d == nil {
		return
	}
	views := make([]itemView, 0, len(d.items))
	for _, it := range d.items {
		views = append(views, viewItem(it, false))
	}
	writeJSON(w, http.StatusOK, map[string]any{"drive": d.ID, "items": views})
}

// getItemContent is Get-OneDriveFileContent: the item's metadata and text.
func (s *Service) getItemContent(w http.ResponseWriter, r *http.Request, t *tenantData) {
	d := s.drive(w, r, t)
	if d == nil {
		return
	}
	id := r.PathValue("item")
	i := d.findItem(id)
	if i < 0 {
		notFound(w, "item", id)
		return
	}
	writeJSON(w, http.StatusOK, viewItem(d.items[i], true))
}

// removeItem is Remove-OneDriveFile.
func (s *Service) removeItem(w http.ResponseWriter, r *http.Request, t *tenantData) {
	d := s.drive(w, r, t)
	if d == nil {
		return
	}
	id := r.PathValue("item")
	i := d.findItem(id)
	if i < 0 {
		notFound(w, "item", id)
		return
	}
	d.items = slices.Delete(d.items, i, i+1)
	writeJSON(w, http.StatusOK, map[string]any{"drive": d.ID, "deleted": id})
}
