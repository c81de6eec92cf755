// Local-only stand-in for https://telegram.org/js/telegram-web-app.js (served by local/webapp_server.py
// when telegram.org cannot be reached). It reads what Telegram puts in the URL fragment
// (#tgWebAppData=...&tgWebAppThemeParams=...) and offers the parts of window.Telegram.WebApp that
// NanoGen uses. It draws no buttons: outside a Telegram client the app draws its own.
// openInvoice asks with confirm() whether to pretend the payment went through.
(function () {
  "use strict";
  if (window.Telegram && window.Telegram.WebApp) return; // a test harness installed its own
  var hash = new URLSearchParams(location.hash.slice(1));
  var initData = hash.get("tgWebAppData") || "";
  var params = new URLSearchParams(initData);
  var unsafe = {};
  params.forEach(function (value, key) {
    try {
      unsafe[key] = key === "user" || key === "receiver" || key === "chat" ? JSON.parse(value) : value;
    } catch (e) {
      unsafe[key] = value;
    }
  });
  var theme = {};
  try {
    theme = JSON.parse(hash.get("tgWebAppThemeParams") || "{}");
  } catch (e) {
    theme = {};
  }
  var dark = theme.bg_color
    ? parseInt(theme.bg_color.slice(1, 3), 16) < 128
    : window.matchMedia && window.matchMedia("(prefers-color-scheme: dark)").matches;
  var handlers = {};

  function button(extra) {
    var clicks = [];
    var self = {
      text: "",
      isVisible: false,
      isActive: true,
      isProgressVisible: false,
      onClick: function (fn) { clicks.push(fn); return self; },
      offClick: function (fn) { clicks = clicks.filter(function (f) { return f !== fn; }); return self; },
      show: function () { self.isVisible = true; return self; },
      hide: function () { self.isVisible = false; return self; },
      enable: function () { self.isActive = true; return self; },
      disable: function () { self.isActive = false; return self; },
      setText: function (text) { self.text = text; return self; },
      showProgress: function () { self.isProgressVisible = true; return self; },
      hideProgress: function () { self.isProgressVisible = false; return self; },
      setParams: function (p) {
        if ("text" in p) self.text = p.text;
        if ("is_visible" in p) self.isVisible = p.is_visible;
        if ("is_active" in p) self.isActive = p.is_active;
        return self;
      },
      _click: function () { clicks.slice().forEach(function (fn) { fn(); }); },
    };
    return Object.assign(self, extra || {});
  }

  window.Telegram = window.Telegram || {};
  window.Telegram.WebApp = {
    initData: initData,
    initDataUnsafe: unsafe,
    version: hash.get("tgWebAppVersion") || "8.0",
    platform: hash.get("tgWebAppPlatform") || "unknown",
    colorScheme: dark ? "dark" : "light",
    themeParams: theme,
    isExpanded: true,
    viewportHeight: window.innerHeight,
    viewportStableHeight: window.innerHeight,
    MainButton: button(),
    SecondaryButton: button(),
    BackButton: button(),
    HapticFeedback: {
      impactOccurred: function () {},
      notificationOccurred: function () {},
      selectionChanged: function () {},
    },
    ready: function () {},
    expand: function () {},
    close: function () { window.close(); },
    onEvent: function (name, fn) { (handlers[name] = handlers[name] || []).push(fn); },
    offEvent: function (name, fn) {
      handlers[name] = (handlers[name] || []).filter(function (f) { return f !== fn; });
    },
    openLink: function (url) { window.open(url, "_blank", "noopener"); },
    openTelegramLink: function (url) { window.open(url, "_blank", "noopener"); },
    openInvoice: function (url, callback) {
      var paid = window.confirm("Local stand-in for Telegram: pretend the invoice was paid?\n\n" + url);
      setTimeout(function () {
        if (callback) callback(paid ? "paid" : "cancelled");
      }, 0);
    },
  };
})();
