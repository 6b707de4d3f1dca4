import nodemailer from "nodemailer";

export const transport = nodemailer.createTransport(
  "smtps://alerts%40shop.example:IKTcS%yJqv1LiXy9@smtp.mailprovider.net:465"
);
