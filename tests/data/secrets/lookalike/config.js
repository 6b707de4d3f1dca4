module.exports = {
  apiKey: process.env.SEARCH_API_KEY,
  secret: process.env.SESSION_SECRET,
  tokenHeader: "x-auth-token",
  passwordPolicy: "strong",
};
