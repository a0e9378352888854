export { GroupedRequests, takeRound, type GroupedRequestsOptions } from "./grouped-requests.js";
