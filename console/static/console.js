// Lockbox admin center: live lists and small form conveniences. Every page
// works without this script; it only saves reloads.
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

  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("[data-refresh]").forEach(live);
    var form = document.getElementById("new-request");
    if (form) activities(form);
  });
})();
