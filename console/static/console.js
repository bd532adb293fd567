// Lockbox admin center: live lists and small form conveniences. Every page
// works without this script; it only saves reloads, and what was typed in
// a form when its session ended.
(function () {
  "use strict";

  // Once the page is being left (a form posted, a link followed), polls
  // stop, so a late answer can't redirect the browser elsewhere.
  var leaving = false;
  document.addEventListener("submit", function () { leaving = true; });
  window.addEventListener("pagehide", function () { leaving = true; });

  // Live lists: an element with data-refresh is re-fetched every
  // data-interval ms while the tab is visible and swapped in when it
  // changed. The list is no live region: a screen reader would read all
  // of it again at each change, a time left that moved a minute
  // included. What came and went is said instead in the status line
  // data-status names ("2 new requests"). A 401 means the session can't be used as it is: it ended, or
  // its identity provider must confirm its user first. Reloading the page
  // does what either needs (sign-in, or that confirmation, which comes
  // back to this page). A 400 is the list itself, saying why the server
  // refuses the page's place in it (a cursor of another user, or of a
  // format an upgrade retired) with a link to its first page: it is shown
  // as any list is. Thrown away, the list stayed as it was for good. No
  // answer at all, or another status (the server down, Redis down), shows
  // the element data-stale names, and says so in the status line, until
  // an answer comes: a list that silently stopped refreshing looked
  // current, a request filed meanwhile missing from it.
  function live(el) {
    var url = el.getAttribute("data-refresh");
    var every = parseInt(el.getAttribute("data-interval"), 10) || 5000;
    var busy = false;
    var status = document.getElementById(el.getAttribute("data-status") || "");
    var stale = document.getElementById(el.getAttribute("data-stale") || "");
    var failing = false;
    function unanswered() {
      if (failing || leaving) return;
      failing = true;
      if (stale !== null) stale.hidden = false;
      if (status !== null) announce(status, "The list can't be refreshed now.");
    }
    function answered() {
      if (!failing) return;
      failing = false;
      if (stale !== null) stale.hidden = true;
      if (status !== null) announce(status, "The list is refreshed again.");
    }
    // The last fragment swapped in, as the server wrote it: compared with
    // innerHTML, which gives back &#39; as ' (and so on), a list showing
    // such a character never compared equal, and was swapped in (its
    // focus lost, read out again: it is aria-live) at every poll.
    var shown = null;
    function tick() {
      if (busy || leaving || document.hidden) return;
      busy = true;
      fetch(url, { credentials: "same-origin", headers: { "Accept": "text/html" } })
        .then(function (res) {
          if (res.status === 401 && !leaving) { leaving = true; window.location.reload(); return null; }
          if (res.ok || res.status === 400) return res.text();
          if (res.status !== 401) unanswered();
          return null;
        })
        .then(function (html) {
          if (html === null || html === undefined) return;
          answered();
          if (shown === null ? html.trim() !== el.innerHTML.trim() : html !== shown) {
            // A keyboard user on a link of the list keeps their place:
            // the same link of the new list takes the focus back, or it
            // would fall to the page's start and Tab begin again there.
            var active = el.contains(document.activeElement) ? document.activeElement : null;
            var focused = active ? active.getAttribute("href") : null;
            var row = active ? rowIndex(el, active) : -1;
            var before = requestIDs(el);
            el.innerHTML = html;
            if (status !== null) announce(status, changes(before, requestIDs(el)));
            if (active !== null) {
              var again = Array.prototype.find.call(el.querySelectorAll("a[href]"), function (a) {
                return a.getAttribute("href") === focused;
              });
              (again || neighbour(el, row)).focus({ preventScroll: true });
            }
            el.setAttribute("data-updated", new Date().toISOString());
          }
          shown = html;
        })
        .catch(function () { unanswered(); /* and try again next tick */ })
        .then(function () { busy = false; });
    }
    setInterval(tick, every);
    document.addEventListener("visibilitychange", tick);
  }

  // requestIDs are the ids of the requests list shows.
  function requestIDs(list) {
    return Array.prototype.map.call(list.querySelectorAll("tr[data-request]"), function (tr) {
      return tr.getAttribute("data-request");
    });
  }

  // changes says in words which requests came into the list and how many
  // left it, "" when none did (only a time left changed).
  function changes(before, after) {
    var added = after.filter(function (id) { return before.indexOf(id) < 0; }).length;
    var gone = before.filter(function (id) { return after.indexOf(id) < 0; }).length;
    var said = [];
    if (added > 0) said.push(added === 1 ? "1 new request" : added + " new requests");
    if (gone > 0) said.push(gone === 1 ? "1 request left the list" : gone + " requests left the list");
    return said.join("; ");
  }

  // announce puts news in the status line. The same words as the last
  // time get a trailing no-break space toggled: a screen reader may not
  // read out a status whose text did not change.
  function announce(status, news) {
    if (news === "") return;
    if (status.textContent.replace(/\u00a0$/, "") === news && !/\u00a0$/.test(status.textContent)) news += "\u00a0";
    status.textContent = news;
  }

  // rowIndex is the place in list of the row holding node, -1 if none.
  function rowIndex(list, node) {
    var tr = node.closest("tr[data-request]");
    return tr ? Array.prototype.indexOf.call(list.querySelectorAll("tr[data-request]"), tr) : -1;
  }

  // neighbour is what takes the focus when its link left the list (the
  // request was decided elsewhere, or expired): the link of the row now
  // in its place, which followed it, else the last row's, which preceded
  // it, else the list's message (nothing waiting, or a problem), made
  // focusable for this, else the list's heading.
  function neighbour(list, row) {
    var links = list.querySelectorAll("tr[data-request] a[href]");
    if (links.length > 0) return links[Math.min(Math.max(row, 0), links.length - 1)];
    var msg = list.querySelector(".empty, .problem");
    if (msg === null) {
      var section = list.closest("[aria-labelledby]");
      msg = section ? document.getElementById(section.getAttribute("aria-labelledby")) : list;
    }
    if (msg && !msg.hasAttribute("tabindex")) msg.setAttribute("tabindex", "-1");
    return msg || list;
  }

  // New request: show only the chosen service's activities.
  function activities(form) {
    var select = form.querySelector("#service");
    function show() {
      form.querySelectorAll("fieldset.activities").forEach(function (fs) {
        fs.hidden = fs.getAttribute("data-service") !== select.value;
      });
    }
    select.addEventListener("change", show);
    show();
  }

  // Drafts: what is typed in a form marked data-draft is kept in the
  // tab's sessionStorage as it is typed, so that a form posted after the
  // session ended (idle, signed out in another tab, or due to be verified
  // again), which the server does not perform and whose page comes back
  // empty after the sign-in, gets it back. The server never carries a
  // form's contents through its sign-in; the draft stays in this tab (not
  // localStorage: it ends with the tab) and holds no hidden field, so
  // neither the form token nor a form id. A draft belongs to the user
  // the page names (data-draft-owner, an opaque digest of who signed in):
  // once another user signs in in this tab, the others' drafts are
  // deleted, never shown; signing out deletes them all. A draft is put
  // back only into a form as it was served (nothing typed in it yet); a
  // form marked data-draft-base shows stored state (settings, a registry
  // entry), and its draft is put back only over the same state it was
  // typed over, or the saved form would undo a change made since without
  // the revision check noticing: else it is shown, not put back. The
  // draft goes once the page after its form's post confirms the action
  // (a flash with data-done), or on Discard.
  var draftPrefix = "lockbox-draft:";
  var sentKey = "lockbox-draft-sent";
  var signinKey = "lockbox-draft-signin";

  function store() {
    try { return window.sessionStorage; } catch (e) { return null; }
  }

  // drafted are the fields of form a draft holds: every named input but
  // hidden ones and buttons, each textarea and select, by id.
  function drafted(form) {
    return Array.prototype.filter.call(form.elements, function (el) {
      if (el.id === "" || el.name === "" || el.disabled) return false;
      if (el.tagName === "TEXTAREA" || el.tagName === "SELECT") return true;
      return el.tagName === "INPUT" && ["hidden", "password", "submit", "button", "reset", "image", "file"].indexOf(el.type) < 0;
    });
  }

  function isCheck(el) { return el.type === "checkbox" || el.type === "radio"; }

  // values are the fields' values now, or as the page was served.
  function values(form, served) {
    var v = {};
    drafted(form).forEach(function (el) {
      if (isCheck(el)) v[el.id] = served ? el.defaultChecked : el.checked;
      else if (el.tagName === "SELECT") v[el.id] = served ? servedOption(el) : el.value;
      else v[el.id] = served ? el.defaultValue : el.value;
    });
    return v;
  }

  function servedOption(select) {
    var opt = Array.prototype.find.call(select.options, function (o) { return o.defaultSelected; }) || select.options[0];
    return opt ? opt.value : "";
  }

  function same(a, b) {
    var ka = Object.keys(a), kb = Object.keys(b);
    return ka.length === kb.length && ka.every(function (k) { return b.hasOwnProperty(k) && a[k] === b[k]; });
  }

  function drafts(form, owner) {
    var s = store();
    if (s === null) return;
    var key = draftPrefix + owner + ":" + form.getAttribute("data-draft");
    var note = form.querySelector("[data-draft-note]");

    function save() {
      var now = values(form, false), served = values(form, true);
      try {
        if (same(now, served)) s.removeItem(key);
        else s.setItem(key, JSON.stringify({ fields: now, base: served }));
      } catch (e) { /* storage full or refused: no draft, the form works as ever */ }
    }
    form.addEventListener("input", save);
    form.addEventListener("change", save);
    form.addEventListener("submit", function () {
      save();
      try { s.setItem(sentKey, key); } catch (e) { /* as above */ }
    });

    var draft = null;
    try { draft = JSON.parse(s.getItem(key)); } catch (e) { draft = null; }
    if (draft === null || typeof draft !== "object" || typeof draft.fields !== "object" || draft.fields === null) return;
    var served = values(form, true);
    if (!same(values(form, false), served) || same(draft.fields, served)) return;
    if (note === null) return;
    if (form.hasAttribute("data-draft-base") && !same(draft.base || {}, served)) {
      // The server's answer to a save refused as stale shows the change
      // typed itself.
      if (document.querySelector("[data-testid=\"unsaved\"]") !== null) return;
      shown(form, note, draft.fields, served);
      show(note, "[data-draft-changed]");
    } else {
      fill(form, draft.fields);
      show(note, signedInAgain ? "[data-draft-ended]" : "[data-draft-earlier]");
    }
    note.hidden = false;
    var discard = note.querySelector("[data-draft-discard]");
    if (discard !== null) {
      discard.addEventListener("click", function () {
        try { s.removeItem(key); } catch (e) { /* nothing kept */ }
        fill(form, served);
        note.hidden = true;
        var first = drafted(form)[0];
        if (first) first.focus();
      });
    }
  }

  function show(note, which) {
    note.querySelectorAll("[data-draft-ended], [data-draft-earlier], [data-draft-changed]").forEach(function (p) {
      p.hidden = !p.matches(which);
    });
  }

  // fill puts v into form's fields, and tells the page's own scripts
  // (the activities shown for a service) that they changed.
  function fill(form, v) {
    drafted(form).forEach(function (el) {
      if (!v.hasOwnProperty(el.id)) return;
      if (isCheck(el)) el.checked = v[el.id] === true;
      else if (typeof v[el.id] === "string") el.value = v[el.id];
      if (el.tagName === "SELECT") el.dispatchEvent(new Event("change", { bubbles: false }));
    });
  }

  // shown lists in note what the draft typed over the form as served,
  // field by field, as text.
  function shown(form, note, typed, served) {
    var list = note.querySelector("[data-draft-typed]");
    if (list === null) return;
    list.textContent = "";
    drafted(form).forEach(function (el) {
      if (!typed.hasOwnProperty(el.id) || typed[el.id] === served[el.id]) return;
      var label = form.querySelector("label[for=\"" + CSS.escape(el.id) + "\"]");
      var dt = document.createElement("dt");
      dt.textContent = label ? label.textContent.trim() : el.name;
      var dd = document.createElement("dd");
      dd.className = "prewrap";
      dd.textContent = isCheck(el) ? (typed[el.id] ? "ticked" : "not ticked") : String(typed[el.id]);
      list.appendChild(dt);
      list.appendChild(dd);
    });
    list.hidden = false;
  }

  // signedInAgain says whether this page is where a sign-in brought the
  // tab back to after its session ended: it says so, or the tab's last
  // page was the sign-in page. A draft put back elsewhere (a form sent
  // as the sign-in was being confirmed, a page left and opened again)
  // is said to be from before, not from an ended session.
  var signedInAgain = false;

  function startDrafts() {
    var s = store();
    if (s === null) return;
    var owner = document.body.getAttribute("data-draft-owner");
    var flash = document.querySelector("[data-flash]");
    try {
      if (owner === null || owner === "") {
        // No one is signed in: the sign-in page, or an error page.
        // Drafts wait for their user.
        if (document.body.getAttribute("data-page") === "signin") s.setItem(signinKey, "1");
        return;
      }
      signedInAgain = s.getItem(signinKey) !== null || (flash !== null && flash.getAttribute("data-flash") === "signed_in_again");
      s.removeItem(signinKey);
      var mine = draftPrefix + owner + ":";
      for (var i = s.length - 1; i >= 0; i--) {
        var k = s.key(i);
        if (k !== null && k.indexOf(draftPrefix) === 0 && k.indexOf(mine) !== 0) s.removeItem(k);
      }
      var sent = s.getItem(sentKey);
      s.removeItem(sentKey);
      if (sent !== null && sent.indexOf(mine) === 0 && flash !== null && flash.hasAttribute("data-done")) s.removeItem(sent);
    } catch (e) {
      return;
    }
    document.querySelectorAll("form[data-draft]").forEach(function (form) { drafts(form, owner); });
    document.querySelectorAll("form[action=\"/console/signout\"]").forEach(function (form) {
      form.addEventListener("submit", function () {
        try {
          for (var i = s.length - 1; i >= 0; i--) {
            var k = s.key(i);
            if (k !== null && (k.indexOf(draftPrefix) === 0 || k === sentKey)) s.removeItem(k);
          }
        } catch (e) { /* nothing kept */ }
      });
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("[data-refresh]").forEach(live);
    var form = document.getElementById("new-request");
    if (form) activities(form);
    startDrafts();
  });
})();
