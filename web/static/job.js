// The live job page (job.html): follows /s/<server>/jobs/<id>/events (Server-Sent Events) and
// shows the queue position, the progress and live previews, then the results or the failure.
// Without this script the page still shows the status it was loaded with, and a Reload link.
"use strict";
(() => {
  const root = document.getElementById("job");
  if (!root || !window.EventSource || !["queued", "running"].includes(root.dataset.status)) return;
  const $ = (id) => document.getElementById(id);
  const ui = {
    heading: $("job-heading"),
    live: $("job-live"),
    status: $("job-status"),
    progress: $("job-progress"),
    preview: $("job-preview"),
    results: $("job-results"),
    failure: $("job-failure"),
  };
  const promptText = root.querySelector(".prompt-line")?.textContent.trim() || "";

  function show(status, heading) {
    root.dataset.status = status;
    ui.heading.textContent = heading;
  }

  function onQueued({ position, eta_s: eta }) {
    show("queued", "Waiting in the queue");
    const ahead = `${position} ${position === 1 ? "job" : "jobs"} ahead`;
    ui.status.textContent = `Waiting: ${ahead}${eta == null ? "" : `, about ${eta} s to go`}.`;
    ui.progress.removeAttribute("value"); // indeterminate while waiting
  }

  function onProgress({ step, total, preview }) {
    show("running", "Painting");
    if (total > 0) {
      ui.progress.max = total;
      ui.progress.value = step;
      ui.status.textContent = `Painting: step ${step} of ${total}.`;
    } else {
      ui.status.textContent = "Painting…";
    }
    if (preview) {
      ui.preview.src = preview;
      ui.preview.hidden = false;
    }
  }

  function resultItem(image) {
    const item = document.createElement("li");
    const link = document.createElement("a");
    link.href = image.page_url;
    const thumb = document.createElement("img");
    thumb.src = image.thumb_url;
    thumb.alt = `Result ${image.index + 1}: ${promptText}`;
    thumb.width = 320;
    thumb.height = 320;
    link.append(thumb);
    const meta = document.createElement("div");
    meta.className = "meta";
    const open = document.createElement("a");
    open.href = image.page_url;
    open.textContent = "Open";
    const again = document.createElement("a");
    again.href = image.edit_url;
    again.textContent = "Edit again";
    meta.append(open, again);
    item.append(link, meta);
    return item;
  }

  function onDone({ images }) {
    show("done", "Done");
    ui.live.hidden = true;
    ui.results.replaceChildren(...images.map(resultItem));
    ui.results.hidden = false;
  }

  function onFailed({ detail }) {
    show("failed", "Failed");
    ui.live.hidden = true;
    ui.failure.textContent = detail;
    ui.failure.hidden = false;
  }

  const source = new EventSource(root.dataset.eventsUrl);
  const handlers = { queued: onQueued, progress: onProgress, done: onDone, failed: onFailed };
  for (const [name, handle] of Object.entries(handlers)) {
    source.addEventListener(name, (event) => {
      handle(JSON.parse(event.data));
      if (name === "done" || name === "failed") source.close(); // over: no reconnecting
    });
  }
  source.addEventListener("error", () => {
    if (source.readyState === EventSource.CLOSED) {
      ui.status.textContent = "Live updates stopped; reload the page to see the latest.";
    }
  });
})();
