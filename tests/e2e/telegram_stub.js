// A stand-in for Telegram's client around the Mini App, installed before the page's scripts run.
// It looks like a host (TelegramWebviewProxy), so the app uses the main and back buttons instead of
// drawing its own, and it records what the app asks of Telegram in window.__tg:
//   __tg.mainButton()     the main button's current text / visible / active / progress
//   __tg.mainActiveHistory()  is_active of every setParams the main button was given, in order
//   __tg.clickMain()      a tap on the main button;  __tg.clickBack() a tap on the back button
//   __tg.invoices         the links passed to openInvoice;  __tg.finishInvoice(status) closes it
// window.__tgScheme ("light" or "dark") picks the theme Telegram would send.
(function () {
  "use strict";
  var hash = new URLSearchParams(location.hash.slice(1));
  var initData = hash.get("tgWebAppData") || "";
  var user = null;
  try {
    user = JSON.parse(new URLSearchParams(initData).get("user"));
  } catch (e) {
    user = null;
  }
  var dark = window.__tgScheme === "dark";
  var theme = dark
    ? { bg_color: "#17212b", text_color: "#f5f5f5", hint_color: "#708499", link_color: "#6ab3f3",
        button_color: "#5288c1", button_text_color: "#ffffff", secondary_bg_color: "#232e3c" }
    : { bg_color: "#ffffff", text_color: "#000000", hint_color: "#999999", link_color: "#2481cc",
        button_color: "#2481cc", button_text_color: "#ffffff", secondary_bg_color: "#efeff3" };

  function button() {
    var clicks = [];
    var self = {
      text: "", isVisible: false, isActive: true, isProgressVisible: false, history: [],
      onClick: function (fn) { clicks.push(fn); return self; },
      offClick: function (fn) { clicks = clicks.filter(function (f) { return f !== fn; }); return self; },
      show: function () { self.isVisible = true; return self; },
      hide: function () { self.isVisible = false; return self; },
      enable: function () { self.isActive = true; return self; },
      disable: function () { self.isActive = false; return self; },
      setText: function (t) { self.text = t; return self; },
      showProgress: function () { self.isProgressVisible = true; return self; },
      hideProgress: function () { self.isProgressVisible = false; return self; },
      setParams: function (p) {
        if ("text" in p) self.text = p.text;
        if ("is_visible" in p) self.isVisible = p.is_visible;
        if ("is_active" in p) self.isActive = p.is_active;
        self.history.push(Object.assign({}, p));
        return self;
      },
      // Telegram only delivers taps on a visible, active button.
      tap: function () {
        if (!self.isVisible || !self.isActive) return false;
        clicks.slice().forEach(function (fn) { fn(); });
        return true;
      },
    };
    return self;
  }

  var main = button();
  var back = button();
  var pendingInvoice = null;
  window.TelegramWebviewProxy = { postEvent: function () {} };
  window.Telegram = {
    WebApp: {
      initData: initData,
      initDataUnsafe: { user: user, auth_date: new URLSearchParams(initData).get("auth_date") },
      version: "8.0",
      platform: "web",
      colorScheme: dark ? "dark" : "light",
      themeParams: theme,
      viewportHeight: 844,
      viewportStableHeight: 844,
      isExpanded: true,
      MainButton: main,
      BackButton: back,
      HapticFeedback: {
        impactOccurred: function () {}, notificationOccurred: function () {}, selectionChanged: function () {},
      },
      ready: function () { window.__tg.ready = true; },
      expand: function () {},
      onEvent: function () {},
      offEvent: function () {},
      openInvoice: function (url, callback) {
        window.__tg.invoices.push(url);
        pendingInvoice = callback;
      },
    },
  };
  window.__tg = {
    ready: false,
    invoices: [],
    mainButton: function () {
      return { text: main.text, visible: main.isVisible, active: main.isActive, progress: main.isProgressVisible };
    },
    mainActiveHistory: function () {
      return main.history.filter(function (p) { return "is_active" in p; }).map(function (p) { return p.is_active; });
    },
    backVisible: function () { return back.isVisible; },
    clickMain: function () { return main.tap(); },
    clickBack: function () { return back.tap(); },
    finishInvoice: function (status) {
      var callback = pendingInvoice;
      pendingInvoice = null;
      if (callback) callback(status);
    },
  };
})();
