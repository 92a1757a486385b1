"use strict";
// The page reads ../api/v1/dashboard/events: relative, so it works under any path prefix.
