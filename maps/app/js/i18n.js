// The app's words, in Chinese (the default) and English. Statuses, categories and photo kinds
// come with their names from the server; everything the app says itself is here.

const WORDS = {
  app_name: ["网格通", "GridMap field"],
  tab_map: ["地图", "Map"],
  tab_tasks: ["我的任务", "My tasks"],
  tab_report: ["上报", "Report"],
  tasks_title: ["我的任务", "My tasks"],
  queue_title: ["待同步", "Waiting to sync"],
  online: ["在线", "Online"],
  offline: ["离线", "Offline"],
  pending: ["待同步 {n}", "待同步 {n} (waiting to sync)"],
  synced: ["已同步", "All sent"],
  syncing: ["正在同步…", "Sending…"],
  sync_failed: ["同步失败 {n}", "Failed {n}"],
  sync_paused_login: ["登录已过期：请重新登录后同步（待同步的内容已保存在本机）",
    "Your log-in has expired: log in again to send (what waits is kept on this tablet)"],
  log_in_again: ["重新登录", "Log in again"],
  data_saved_at: ["离线数据更新于 {t}", "Offline data from {t}"],
  data_none: ["尚无离线数据：请在有网络时打开一次", "No offline data yet: open the app once online"],
  loading: ["正在加载…", "Loading…"],
  not_worker: ["您名下没有网格：显示您可见范围内的数据", "You hold no grid: showing what you may see"],
  // report form
  report_title: ["事件上报", "Report an issue"],
  location: ["位置", "Location"],
  gps_waiting: ["正在获取 GPS 定位…", "Waiting for GPS…"],
  gps_unavailable: ["无法获取 GPS 定位：请在地图上点击放置标记", "No GPS fix: tap the map to place the pin"],
  gps_accuracy: ["GPS 精度 ±{m} 米", "GPS accuracy ±{m} m"],
  gps_poor: ["定位精度较差（±{m} 米）：请拖动标记到准确位置", "Poor GPS accuracy (±{m} m): drag the pin to the right place"],
  pin_placed: ["位置已手动标定", "Location set by hand"],
  use_gps: ["使用 GPS 位置", "Use GPS position"],
  grid_inside: ["所属网格：{name}（{code}）", "Grid: {name} ({code})"],
  grid_boundary: ["所属网格：{name}（{code}，位于网格边界）", "Grid: {name} ({code}, on the boundary)"],
  grid_nearest: ["所属网格：{name}（{code}，网格外 {d} 米，就近归属）", "Grid: {name} ({code}, {d} m outside, the nearest)"],
  grid_unassigned: ["不在任何网格内：将由社区分派", "In no grid: the community will assign it"],
  facility_near: ["关联部件：{name}（{d} 米）", "Facility: {name} ({d} m)"],
  facility_none: ["附近 {r} 米内没有该类部件", "No such facility within {r} m"],
  server_decides: ["以服务器判定为准", "the server decides"],
  category: ["类别", "Category"],
  description: ["描述", "Description"],
  description_hint: ["问题是什么，在哪里（如：3号楼东侧井盖破损）", "What and where (e.g. cover broken east of building 3)"],
  photos: ["照片", "Photos"],
  photos_hint: ["1–6 张，拍摄后自动压缩", "1 to 6, shrunk on the tablet"],
  photos_after: ["处置后照片", "Photos after the fix"],
  self_resolve: ["自处理（已当场处理完毕）", "Fixed on the spot (自处理)"],
  self_resolve_hint: ["上报照片作为处置前照片，再拍处置后照片", "The report's photos count as before; add photos after"],
  submit: ["提交", "Submit"],
  cancel: ["取消", "Cancel"],
  remove: ["删除", "Remove"],
  retry: ["重试", "Retry"],
  duplicates: ["附近可能重复的事件：", "Possible duplicates nearby:"],
  duplicate_item: ["#{id} {status}，{d} 米", "#{id} {status}, {d} m"],
  need_location: ["请先确定位置（GPS 或在地图上放置标记）", "Set the location first (GPS or a pin on the map)"],
  need_category: ["请选择类别", "Choose a category"],
  need_photo: ["请至少拍摄 1 张照片", "Take at least one photo"],
  too_many_photos: ["最多 {n} 张照片", "At most {n} photos"],
  need_after_photo: ["自处理须拍摄处置后照片", "Fixed on the spot needs a photo after the fix"],
  not_image: ["{name} 不是图片", "{name} is not a picture"],
  saved_offline: ["已保存，联网后自动发送（待同步）", "Saved: it will be sent when the network returns"],
  saved_sent: ["已保存，正在发送", "Saved, sending"],
  // tasks
  no_tasks: ["没有待办任务", "No open tasks"],
  overdue: ["超期", "Overdue"],
  due: ["期限 {t}", "Due {t}"],
  no_due: ["无期限", "No time limit"],
  distance: ["{d} 米", "{d} m"],
  act_verify: ["核实", "Verify"],
  act_check: ["核查", "Check"],
  act_view: ["查看", "View"],
  verify_title: ["核实：上报的问题是否属实", "Verify: is the report true?"],
  verify_valid: ["属实，受理", "True: accept"],
  verify_invalid: ["不属实，不予立案", "Not true: reject"],
  reason: ["原因", "Reason"],
  need_reason: ["不予立案须填写原因", "Rejecting needs a reason"],
  check_title: ["核查：问题是否已处理好", "Check: is it fixed?"],
  check_pass: ["已处理好，结案", "Fixed: close"],
  check_fail: ["未处理好，返工", "Not fixed: rework"],
  note: ["说明", "Note"],
  need_after_for_fail: ["返工须拍摄处置后照片", "Rework needs a photo after the fix"],
  choose_result: ["请选择结果", "Choose a result"],
  queued_action: ["已保存，待同步", "Saved, waiting to sync"],
  task_pending: ["待同步", "waiting to sync"],
  // facilities
  facility_title: ["部件巡检", "Facility check"],
  facility_status_now: ["当前状态：{s}", "Now: {s}"],
  result: ["巡检结果", "Result"],
  verify_result: ["核实结果", "Verification"],
  check_result: ["核查结果", "Check"],
  result_ok: ["正常", "OK"],
  result_damaged: ["损坏", "Damaged"],
  result_missing: ["缺失", "Missing"],
  result_repairing: ["维修中", "Being repaired"],
  check_opens_issue: ["损坏或缺失将自动生成事件", "Damaged or missing opens an issue"],
  need_photo_one: ["请拍摄照片", "Take a photo"],
  close: ["关闭", "Close"],
  locate_me: ["定位", "Locate me"],
  // queue
  job_report: ["上报 · {c}", "Report · {c}"],
  job_verify: ["核实 #{id}", "Verify #{id}"],
  job_check: ["核查 #{id}", "Check #{id}"],
  job_facility: ["部件巡检 · {name}", "Facility check · {name}"],
  job_waiting: ["等待网络", "waiting for the network"],
  job_failed: ["失败：{m}", "failed: {m}"],
  job_photos: ["照片 {done}/{n}", "photos {done}/{n}"],
  network_error: ["网络不可用", "no network"],
  server_busy: ["服务器暂时不可用，稍后自动重试", "server unavailable, retrying later"],
};

let lang = localStorage.getItem("gridmap-lang") || "zh";

export function language() { return lang; }

export function setLanguage(value) {
  lang = value === "en" ? "en" : "zh";
  localStorage.setItem("gridmap-lang", lang);
  document.documentElement.lang = lang === "zh" ? "zh-CN" : "en";
}

/** The app's text for ``key`` in the current language, with ``{name}`` filled from ``values``. */
export function t(key, values = {}) {
  const pair = WORDS[key];
  const text = pair ? pair[lang === "zh" ? 0 : 1] : key;
  return text.replace(/\{(\w+)\}/g, (_, name) => (name in values ? String(values[name]) : ""));
}

/** A (中文, English) pair from the server in the current language. */
export function pick(pair) {
  if (!pair) return "";
  return lang === "zh" ? pair[0] : pair[1];
}

/** The Accept-Language the app sends, so that the server's errors come in the same language. */
export function acceptLanguage() { return lang === "zh" ? "zh-CN,zh;q=0.9" : "en"; }

/** Beijing time, as workers read it (the tablet's own zone may be anything). */
export function beijingTime(iso) {
  if (!iso) return "";
  const fmt = new Intl.DateTimeFormat(lang === "zh" ? "zh-CN" : "en-GB", {
    timeZone: "Asia/Shanghai", month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit",
  });
  return fmt.format(new Date(iso));
}

/** Fill the static text of the shell (elements with ``data-t``). */
export function translateShell(root = document) {
  for (const el of root.querySelectorAll("[data-t]")) el.textContent = t(el.dataset.t);
}
