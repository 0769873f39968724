// corehour's phone status view: keep the page for when the phone is offline.
// The page is shown from the cache at once and refreshed from the network behind it; its data
// (api/) is never cached here: the page keeps its last answer itself and says it is offline.
"use strict";
var scope = self.registration.scope;
var CACHE = "corehour-m-" + new URL(self.location).searchParams.get("v");
var SHELL = [scope, scope + "manifest.webmanifest", scope + "icon.svg"];

self.addEventListener("install", function (event) {
  event.waitUntil(
    caches.open(CACHE).then(function (cache) { return cache.addAll(SHELL); }).then(function () { return self.skipWaiting(); })
  );
});

self.addEventListener("activate", function (event) {
  event.waitUntil(
    caches.keys().then(function (names) {
      return Promise.all(names.filter(function (n) { return n.indexOf("corehour-m-") === 0 && n !== CACHE; })
        .map(function (n) { return caches.delete(n); }));
    }).then(function () { return self.clients.claim(); })
  );
});

self.addEventListener("fetch", function (event) {
  var url = event.request.url.split("?")[0];
  if (event.request.method !== "GET" || SHELL.indexOf(url) < 0) return;
  event.respondWith(
    caches.open(CACHE).then(function (cache) {
      return cache.match(url).then(function (cached) {
        var fresh = fetch(event.request).then(function (response) {
          // Only the page itself, never a redirect to the login page.
          if (response.ok && !response.redirected) cache.put(url, response.clone());
          return response;
        });
        if (!cached) return fresh;
        fresh.catch(function () {});  // offline: the cached page is the answer
        return cached;
      });
    })
  );
});
