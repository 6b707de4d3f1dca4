export const config = {
  baseUrl: "https://search.internal",
  apiKey: "Hbx6uMbKwN9MvlTZFTvNmOeuBdv8h62T",
  timeoutMs: 3000,
};
